package main

import (
	"fmt"
	"io"
	"os"

	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/client/authenticators"
	"github.com/sessioncert/sessioncert/models"
)

func (a *app) authenticatorCommands() []command {
	return []command{
		{name: "create", short: "give an identity a password or a client certificate",
			data: &authenticatorCreateCmd{app: a},
			long: "Create an authenticator: --method updb (default) is a username and " +
				"password; --method cert registers a client certificate, which then logs in " +
				"with sessioncert login --method cert."},
		{name: "list", short: "list authenticators", data: &authenticatorListCmd{app: a}},
		{name: "show", short: "show one authenticator", data: &authenticatorShowCmd{app: a}},
		{name: "delete", short: "delete an authenticator", data: &authenticatorDeleteCmd{app: a},
			long: "Delete an authenticator. The sessions that logged in with it end at once, " +
				"with their certificates; sessions of the identity's other authenticators live on."},
		{name: "set-password", short: "set the password of an updb authenticator",
			data: &authenticatorSetPasswordCmd{app: a},
			long: "Set the password of an updb authenticator. Sessions that logged in with the " +
				"old password live on; delete the authenticator to end them."},
	}
}

type authenticatorCreateCmd struct {
	app *app

	Identity     string `long:"identity" required:"yes" value-name:"ID"`
	Method       string `long:"method" default:"updb" choice:"updb" choice:"cert"`
	Username     string `long:"username" value-name:"NAME"`
	Password     string `long:"password" value-name:"PASSWORD"`
	PasswordFile string `long:"password-file" value-name:"FILE"`
	CertFile     string `long:"cert-file" value-name:"FILE"`
}

func (*authenticatorCreateCmd) optionHelp() map[string]string {
	return map[string]string{
		"identity": "id of the identity it belongs to",
		"method":   "kind of credential",
		"username": "unique username, for updb",
		"password": "password, for updb (prefer --password-file, $" + envNewPassword +
			" or the prompt)",
		"password-file": "read the password from the first line of FILE",
		"cert-file":     "client certificate (PEM), for cert",
	}
}

func (c *authenticatorCreateCmd) Execute([]string) error {
	a := c.app
	body := &models.AuthenticatorCreate{Method: &c.Method, IdentityID: &c.Identity}
	switch c.Method {
	case "cert":
		if c.CertFile == "" || c.Username != "" {
			return usagef("--method cert takes --cert-file, and no --username")
		}
		pem, err := os.ReadFile(c.CertFile)
		if err != nil {
			return fmt.Errorf("read the client certificate: %w", err)
		}
		body.CertPem = string(pem)
	default:
		if c.Username == "" || c.CertFile != "" {
			return usagef("--method updb takes --username and a password, and no --cert-file")
		}
	}
	// Not logged in is found before anyone types a password twice.
	auth, err := a.authed()
	if err != nil {
		return err
	}
	if c.Method != "cert" {
		pw, err := a.secret(secretSource{what: "password", flag: "--password", value: c.Password,
			file: c.PasswordFile, fileFlag: "--password-file", env: envNewPassword,
			confirm: true})
		if err != nil {
			return err
		}
		body.Username = c.Username
		body.Password = strfmt.Password(pw)
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Authenticators.CreateAuthenticatorContext(ctx,
		&authenticators.CreateAuthenticatorParams{Body: body}, auth)
	if err != nil {
		return err
	}
	return a.emitCreated("authenticator", res.Payload.Data)
}

type authenticatorListCmd struct {
	app *app
	page
}

func (c *authenticatorListCmd) Execute([]string) error {
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

	res, err := a.api.Authenticators.ListAuthenticatorsContext(ctx,
		&authenticators.ListAuthenticatorsParams{Limit: &c.Limit, Offset: &c.Offset}, auth)
	if err != nil {
		return err
	}
	data, err := items(res.Payload.Data)
	if err != nil {
		return err
	}
	if err := a.emit(data, func(w io.Writer) {
		row(w, "ID", "METHOD", "IDENTITY ID", "USERNAME", "FINGERPRINT")
		for _, d := range data {
			row(w, str(d.ID), str(d.Method), str(d.IdentityID), d.Username, d.Fingerprint)
		}
	}); err != nil {
		return err
	}
	a.more(c.page, len(data), res.Payload.Meta)
	return nil
}

type authenticatorShowCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *authenticatorShowCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Authenticators.DetailAuthenticatorContext(ctx,
		&authenticators.DetailAuthenticatorParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	return a.emit(d, func(w io.Writer) {
		field(w, "ID", str(d.ID))
		field(w, "Method", str(d.Method))
		field(w, "Identity ID", str(d.IdentityID))
		field(w, "Username", d.Username)
		field(w, "Fingerprint", d.Fingerprint)
		field(w, "Created", when(d.CreatedAt))
		field(w, "Updated", when(d.UpdatedAt))
	})
}

type authenticatorDeleteCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *authenticatorDeleteCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Authenticators.DeleteAuthenticatorContext(ctx,
		&authenticators.DeleteAuthenticatorParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	return a.emitDeleted("authenticator", c.Args.ID, res.Payload.Data)
}

type authenticatorSetPasswordCmd struct {
	app *app

	Password     string `long:"password" value-name:"PASSWORD"`
	PasswordFile string `long:"password-file" value-name:"FILE"`
	Args         idArg  `positional-args:"yes" required:"yes"`
}

func (*authenticatorSetPasswordCmd) optionHelp() map[string]string {
	//nolint:gosec // G101: help text that names where a password comes from
	return map[string]string{
		"password": "the new password (prefer --password-file, $" + envNewPassword +
			" or the prompt)",
		"password-file": "read the new password from the first line of FILE",
	}
}

func (c *authenticatorSetPasswordCmd) Execute([]string) error {
	a := c.app
	// Not logged in is found before anyone types a password twice.
	auth, err := a.authed()
	if err != nil {
		return err
	}
	pw, err := a.secret(secretSource{what: "new password", flag: "--password", value: c.Password,
		file: c.PasswordFile, fileFlag: "--password-file", env: envNewPassword, confirm: true})
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	p := strfmt.Password(pw)
	res, err := a.api.Authenticators.PatchAuthenticatorContext(ctx,
		&authenticators.PatchAuthenticatorParams{
			ID: c.Args.ID, Body: &models.AuthenticatorPatch{Password: &p},
		}, auth)
	if err != nil {
		return err
	}
	return a.emit(res.Payload.Data, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Set the password of authenticator %s.\n", c.Args.ID)
	})
}
