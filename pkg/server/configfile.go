package server

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
// "session-timeout = 45m". An option that takes several values (such as
// etcd-endpoints) takes a YAML list, or its INI key repeated; any other
// option takes one value. INI section headers are allowed and ignored. A
// key that names no flag is an error that names the key.
func ApplyConfigFile(p *flags.Parser, path string) error {
	data, err := os.ReadFile(path) //nolint:gosec // the operator's own file
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var settings map[string]setting
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
		set := settings[k]
		if opt.Field().Type.Kind() != reflect.Slice {
			switch {
			case set.list:
				return fmt.Errorf("config file %s: %q takes one value, not a list", path, k)
			case len(set.values) != 1:
				return fmt.Errorf("config file %s: %q is set %d times but takes one value",
					path, k, len(set.values))
			}
		}
		opt.Default = set.values
	}
	return nil
}

// setting is what a file gives one key: its values in order, and whether
// they came as a YAML list.
type setting struct {
	values []string
	list   bool
}

func parseINI(data []byte) (map[string]setting, error) {
	out := map[string]setting{}
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
		// A repeated key adds a value; ApplyConfigFile refuses it for an
		// option that takes only one.
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		set := out[k]
		set.values = append(set.values, strings.Trim(v, `"`))
		out[k] = set
	}
	return out, sc.Err()
}

func parseYAML(data []byte) (map[string]setting, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]setting, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case map[string]any:
			return nil, fmt.Errorf("%q: want a value or a list of values, not a mapping", k)
		case []any:
			set := setting{values: make([]string, 0, len(v)), list: true}
			for _, item := range v {
				switch item.(type) {
				case map[string]any, []any, nil:
					return nil, fmt.Errorf("%q: a list of single values only", k)
				}
				set.values = append(set.values, fmt.Sprint(item))
			}
			out[k] = set
		case nil:
			out[k] = setting{values: []string{""}}
		default:
			out[k] = setting{values: []string{fmt.Sprint(v)}}
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
