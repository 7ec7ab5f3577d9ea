package server

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jessevdk/go-flags"
	"go.yaml.in/yaml/v3"
)

// ConfigFileEnv names the variable that may name the configuration file.
const ConfigFileEnv = EnvPrefix + "CONFIG"

// ApplyConfigFile reads a configuration file and makes its settings the
// defaults of p's options, so that the environment and the command line
// still override them: flag > environment > file > built-in default.
//
// The file is YAML (.yaml, .yml) or INI (anything else): a flat mapping of
// long flag names to values, such as "session-timeout: 45m" or
// "session-timeout = 45m". INI section headers are allowed and ignored. A key
// that names no flag is an error that names the key.
func ApplyConfigFile(p *flags.Parser, path string) error {
	data, err := os.ReadFile(path) //nolint:gosec // the operator's own file
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var settings map[string]string
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		settings, err = parseYAML(data)
	default:
		settings, err = parseINI(data)
	}
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}

	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opt := p.FindOptionByLongName(k)
		if opt == nil || k == "config" || k == "version" || k == "help" {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		opt.Default = []string{settings[k]}
	}
	return nil
}

func parseINI(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", strings.HasPrefix(line, "#"), strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %q set twice", n, k)
		}
		out[k] = strings.Trim(v, `"`)
	}
	return out, sc.Err()
}

func parseYAML(data []byte) (map[string]string, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("%q: want a single value", k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// ConfigFileArg finds --config (or the variable ConfigFileEnv) before the
// command line is parsed for real.
func ConfigFileArg(args []string) string {
	for i, a := range args {
		switch {
		case a == "--":
			return os.Getenv(ConfigFileEnv)
		case a == "--config" && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--config="):
			return strings.TrimPrefix(a, "--config=")
		}
	}
	return os.Getenv(ConfigFileEnv)
}
