package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sessioncert/sessioncert/client/external_jwt_signers"
	"github.com/sessioncert/sessioncert/models"
)

func (a *app) signerCommands() []command {
	return []command{
		{name: "create", short: "accept the JWTs of an external issuer for login",
			data: &signerCreateCmd{app: a},
			long: "Create an external JWT signer. Its tokens are verified with the keys at " +
				"--jwks-endpoint or the certificate or public key in --cert-file; the claim " +
				"--claims-property names the identity, by id or, with --use-external-id, by " +
				"external id."},
		{name: "list", short: "list external JWT signers", data: &signerListCmd{app: a}},
		{name: "show", short: "show one external JWT signer", data: &signerShowCmd{app: a}},
		{name: "update", short: "change fields of an external JWT signer",
			data: &signerUpdateCmd{app: a}},
		{name: "delete", short: "delete an external JWT signer", data: &signerDeleteCmd{app: a}},
	}
}

type signerCreateCmd struct {
	app *app

	Issuer         string `long:"issuer" required:"yes" value-name:"ISS"`
	Audience       string `long:"audience" required:"yes" value-name:"AUD"`
	JWKSEndpoint   string `long:"jwks-endpoint" value-name:"URL"`
	CertFile       string `long:"cert-file" value-name:"FILE"`
	ClaimsProperty string `long:"claims-property" value-name:"CLAIM"`
	UseExternalID  bool   `long:"use-external-id"`
	Disabled       bool   `long:"disabled"`
	Args           struct {
		Name string `positional-arg-name:"name" required:"yes" description:"unique name"`
	} `positional-args:"yes" required:"yes"`
}

func (*signerCreateCmd) optionHelp() map[string]string {
	return map[string]string{
		"issuer":          "the iss claim of its tokens",
		"audience":        "the aud claim its tokens must carry",
		"jwks-endpoint":   "https URL of its JSON Web Key Set",
		"cert-file":       "PEM certificate or public key that verifies its tokens",
		"claims-property": "claim that names the identity (default sub)",
		"use-external-id": "match the claim against identities' external id instead of their id",
		"disabled":        "create it disabled",
	}
}

func (c *signerCreateCmd) Execute([]string) error {
	a := c.app
	if (c.JWKSEndpoint == "") == (c.CertFile == "") {
		return usagef("give exactly one of --jwks-endpoint and --cert-file")
	}
	enabled := !c.Disabled
	body := &models.ExternalJwtSignerCreate{
		Name: &c.Args.Name, Issuer: &c.Issuer, Audience: &c.Audience,
		JwksEndpoint: c.JWKSEndpoint, ClaimsProperty: c.ClaimsProperty,
		UseExternalID: c.UseExternalID, Enabled: &enabled,
	}
	if c.CertFile != "" {
		pem, err := readPEMFile(c.CertFile)
		if err != nil {
			return err
		}
		body.CertPem = pem
	}
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.ExternalJwtSigners.CreateExternalJWTSignerContext(ctx,
		&external_jwt_signers.CreateExternalJWTSignerParams{Body: body}, auth)
	if err != nil {
		return err
	}
	return a.emitCreated("external JWT signer", res.Payload.Data)
}

func readPEMFile(path string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the user names the file to read
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return string(b), nil
}

type signerListCmd struct {
	app *app
	page
}

func (c *signerListCmd) Execute([]string) error {
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

	res, err := a.api.ExternalJwtSigners.ListExternalJWTSignersContext(ctx,
		&external_jwt_signers.ListExternalJWTSignersParams{Limit: &c.Limit, Offset: &c.Offset},
		auth)
	if err != nil {
		return err
	}
	data, err := items(res.Payload.Data)
	if err != nil {
		return err
	}
	if err := a.emit(data, func(w io.Writer) {
		row(w, "ID", "NAME", "ISSUER", "AUDIENCE", "ENABLED")
		for _, d := range data {
			row(w, str(d.ID), str(d.Name), str(d.Issuer), str(d.Audience), yesNo(d.Enabled))
		}
	}); err != nil {
		return err
	}
	a.more(c.page, len(data), res.Payload.Meta)
	return nil
}

type signerShowCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *signerShowCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.ExternalJwtSigners.DetailExternalJWTSignerContext(ctx,
		&external_jwt_signers.DetailExternalJWTSignerParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	return a.emit(d, func(w io.Writer) {
		field(w, "ID", str(d.ID))
		field(w, "Name", str(d.Name))
		field(w, "Issuer", str(d.Issuer))
		field(w, "Audience", str(d.Audience))
		field(w, "JWKS endpoint", d.JwksEndpoint)
		if d.CertPem != "" {
			field(w, "Verification key", "PEM of "+count(len(d.CertPem))+" bytes (see --json)")
		}
		field(w, "Claims property", str(d.ClaimsProperty))
		field(w, "Use external id", yesNo(d.UseExternalID))
		field(w, "Enabled", yesNo(d.Enabled))
		field(w, "Created", when(d.CreatedAt))
		field(w, "Updated", when(d.UpdatedAt))
	})
}

type signerUpdateCmd struct {
	app *app

	Name           *string `long:"name" value-name:"NAME"`
	Issuer         *string `long:"issuer" value-name:"ISS"`
	Audience       *string `long:"audience" value-name:"AUD"`
	JWKSEndpoint   *string `long:"jwks-endpoint" value-name:"URL"`
	CertFile       string  `long:"cert-file" value-name:"FILE"`
	ClaimsProperty *string `long:"claims-property" value-name:"CLAIM"`
	UseExternalID  *bool   `long:"use-external-id"`
	Enabled        *bool   `long:"enabled"`
	Args           idArg   `positional-args:"yes" required:"yes"`
}

func (*signerUpdateCmd) optionHelp() map[string]string {
	return map[string]string{
		"name":            "new unique name",
		"issuer":          "new iss claim",
		"audience":        "new aud claim",
		"jwks-endpoint":   "new JSON Web Key Set URL",
		"cert-file":       "new PEM certificate or public key",
		"claims-property": "new claim that names the identity",
		"use-external-id": "match by external id (--use-external-id=false for ids)",
		"enabled":         "accept its tokens (--enabled=false to stop)",
	}
}

func (c *signerUpdateCmd) Execute([]string) error {
	a := c.app
	body := &models.ExternalJwtSignerPatch{
		Name: c.Name, Issuer: c.Issuer, Audience: c.Audience, JwksEndpoint: c.JWKSEndpoint,
		ClaimsProperty: c.ClaimsProperty, UseExternalID: c.UseExternalID, Enabled: c.Enabled,
	}
	if c.CertFile != "" {
		pem, err := readPEMFile(c.CertFile)
		if err != nil {
			return err
		}
		body.CertPem = &pem
	}
	if *body == (models.ExternalJwtSignerPatch{}) {
		return usagef("nothing to change: give at least one field to update")
	}
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.ExternalJwtSigners.PatchExternalJWTSignerContext(ctx,
		&external_jwt_signers.PatchExternalJWTSignerParams{ID: c.Args.ID, Body: body}, auth)
	if err != nil {
		return err
	}
	return a.emit(res.Payload.Data, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Updated external JWT signer %s.\n", c.Args.ID)
	})
}

type signerDeleteCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *signerDeleteCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.ExternalJwtSigners.DeleteExternalJWTSignerContext(ctx,
		&external_jwt_signers.DeleteExternalJWTSignerParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	return a.emitDeleted("external JWT signer", c.Args.ID, res.Payload.Data)
}
