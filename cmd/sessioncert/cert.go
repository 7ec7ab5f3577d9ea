package main

import (
	"crypto/sha1" //nolint:gosec // G505: the contract's fingerprint; it names, it secures nothing
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/sdk"
)

func (a *app) certCommands() []command {
	return []command{
		{name: "create", short: "make a key here and have the session certify it",
			data: &certCreateCmd{app: a},
			long: "Generate a private key on this machine, send a CSR for it and write the key " +
				"(mode 0600), the certificate chain and the CA bundle to --out-dir as " +
				"NAME-key.pem, NAME-chain.pem and NAME-cas.pem. The key never leaves this " +
				"machine; the certificate lives no longer than the session."},
		{name: "list", short: "list the session's certificates", data: &certListCmd{app: a}},
		{name: "show", short: "show one certificate", data: &certShowCmd{app: a}},
		{name: "delete", short: "delete one certificate; it is refused from now on",
			data: &certDeleteCmd{app: a}},
	}
}

// idArg is the positional id of the entity a command acts on.
type idArg struct {
	ID string `positional-arg-name:"id" required:"yes" description:"id of the entity"`
}

type certCreateCmd struct {
	app *app

	// KeyType takes no choice tags: they would widen the first column of
	// --help until the help beside it no longer fits.
	KeyType string `long:"key-type" default:"p256" value-name:"TYPE"`
	OutDir  string `long:"out-dir" short:"o" default:"." value-name:"DIR"`
	Name    string `long:"name" default:"session" value-name:"NAME"`
	Force   bool   `long:"force"`
}

func (*certCreateCmd) optionHelp() map[string]string {
	return map[string]string{
		"key-type": "kind of key to generate: " + keyTypeList(),
		"out-dir":  "directory to write the files to",
		"name":     "base name of the files",
		"force":    "overwrite files that exist",
	}
}

// keyTypeList names the key types cert create offers, for help and errors.
func keyTypeList() string {
	names := make([]string, 0, len(sdk.KeyTypes()))
	for _, t := range sdk.KeyTypes() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// certFiles are the files cert create writes.
type certFiles struct{ key, chain, cas string }

func (c *certCreateCmd) files() certFiles {
	base := filepath.Join(c.OutDir, c.Name)
	return certFiles{key: base + "-key.pem", chain: base + "-chain.pem", cas: base + "-cas.pem"}
}

func (c *certCreateCmd) Execute([]string) error {
	a := c.app
	if !slices.Contains(sdk.KeyTypes(), sdk.KeyType(c.KeyType)) {
		return usagef("--key-type %q is not one of %s", c.KeyType, keyTypeList())
	}
	if c.Name == "" || c.Name != filepath.Base(c.Name) {
		return usagef("--name %q must be a plain file name", c.Name)
	}
	files := c.files()
	// Refuse before the controller issues a certificate nobody can use.
	if !c.Force {
		for _, p := range []string{files.key, files.chain, files.cas} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s exists (use --force to overwrite it)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	auth, err := a.authed()
	if err != nil {
		return err
	}
	key, err := sdk.GenerateKey(sdk.KeyType(c.KeyType))
	if err != nil {
		return err
	}
	csr, err := sdk.NewCSR(key)
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.CurrentAPISession.CreateCurrentAPISessionCertificateContext(ctx,
		&current_api_session.CreateCurrentAPISessionCertificateParams{
			SessionCertificate: &models.CurrentAPISessionCertificateCreate{Csr: &csr},
		}, auth)
	if err != nil {
		return err
	}

	// Check what came back before writing anything.
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	cert, err := sdk.ParseChain(str(d.Certificate), key)
	if err != nil {
		return err
	}
	if _, err := sdk.ParseCAs(str(d.Cas)); err != nil {
		return err
	}
	keyPEM, err := sdk.MarshalKeyPEM(key)
	if err != nil {
		return err
	}
	// The directory holds the public chain and bundle too; the key file
	// protects itself.
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil { //nolint:gosec // G301: see above
		return fmt.Errorf("create the output directory: %w", err)
	}
	if err := writeFileAtomic(files.key, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(files.chain, []byte(str(d.Certificate)), 0o644); err != nil {
		return err
	}
	if err := writeFileAtomic(files.cas, []byte(str(d.Cas)), 0o644); err != nil {
		return err
	}

	leaf := cert.Leaf
	sum := sha1.Sum(leaf.Raw) //nolint:gosec // G401: the contract's fingerprint
	return a.emit(d, func(w io.Writer) {
		field(w, "ID", str(d.ID))
		field(w, "Subject", leaf.Subject.String())
		field(w, "Serial", hex.EncodeToString(leaf.SerialNumber.Bytes()))
		field(w, "Fingerprint", hex.EncodeToString(sum[:]))
		field(w, "Valid from", whenTime(leaf.NotBefore))
		field(w, "Valid to", whenTime(leaf.NotAfter))
		field(w, "Key", files.key+" ("+c.KeyType+")")
		field(w, "Chain", files.chain)
		field(w, "CA bundle", files.cas)
	})
}

type certListCmd struct {
	app *app
	page
}

func (c *certListCmd) Execute([]string) error {
	a := c.app
	if err := c.check(); err != nil {
		return err
	}
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.CurrentAPISession.ListCurrentAPISessionCertificatesContext(ctx,
		&current_api_session.ListCurrentAPISessionCertificatesParams{
			Limit: &c.Limit, Offset: &c.Offset,
		}, auth)
	if err != nil {
		return err
	}
	data, err := items(res.Payload.Data)
	if err != nil {
		return err
	}
	if err := a.emit(data, func(w io.Writer) {
		row(w, "ID", "FINGERPRINT", "VALID FROM", "VALID TO")
		for _, d := range data {
			row(w, str(d.ID), str(d.Fingerprint), when(d.ValidFrom), when(d.ValidTo))
		}
	}); err != nil {
		return err
	}
	a.more(c.page, len(data), res.Payload.Meta)
	return nil
}

type certShowCmd struct {
	app *app

	PEM  bool  `long:"pem" description:"print only the certificate chain, PEM"`
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *certShowCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.CurrentAPISession.DetailCurrentAPISessionCertificateContext(ctx,
		&current_api_session.DetailCurrentAPISessionCertificateParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	if c.PEM && !a.opts.JSON {
		_, err := io.WriteString(a.io.out, str(d.Certificate))
		return err
	}
	return a.emit(d, func(w io.Writer) {
		field(w, "ID", str(d.ID))
		field(w, "Subject", str(d.Subject))
		field(w, "Fingerprint", str(d.Fingerprint))
		field(w, "Valid from", when(d.ValidFrom))
		field(w, "Valid to", when(d.ValidTo))
		field(w, "Created", when(d.CreatedAt))
	})
}

type certDeleteCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *certDeleteCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.CurrentAPISession.DeleteCurrentAPISessionCertificateContext(ctx,
		&current_api_session.DeleteCurrentAPISessionCertificateParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	return a.emit(res.Payload.Data, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Deleted certificate %s.\n", c.Args.ID)
	})
}
