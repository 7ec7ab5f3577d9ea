package main

import (
	"fmt"
	"io"

	"github.com/sessioncert/sessioncert/client/identities"
	"github.com/sessioncert/sessioncert/models"
)

func (a *app) identityCommands() []command {
	return []command{
		{name: "create", short: "create an identity", data: &identityCreateCmd{app: a},
			long: "Create an identity. It cannot log in until it has an authenticator " +
				"(sessioncert authenticator create) or an external JWT signer names it."},
		{name: "list", short: "list identities", data: &identityListCmd{app: a}},
		{name: "show", short: "show one identity", data: &identityShowCmd{app: a}},
		{name: "update", short: "change fields of an identity", data: &identityUpdateCmd{app: a}},
		{name: "delete", short: "delete an identity, ending its sessions",
			data: &identityDeleteCmd{app: a}},
	}
}

type identityCreateCmd struct {
	app *app

	Type       string `long:"type" default:"User" choice:"User" choice:"Router"`
	Admin      bool   `long:"admin"`
	ExternalID string `long:"external-id" value-name:"ID"`
	Args       struct {
		Name string `positional-arg-name:"name" required:"yes" description:"unique name"`
	} `positional-args:"yes" required:"yes"`
}

func (*identityCreateCmd) optionHelp() map[string]string {
	return map[string]string{
		"type":  "kind of identity",
		"admin": "may use the management API",
		"external-id": "the value an external JWT names it by, for signers that use " +
			"external ids",
	}
}

func (c *identityCreateCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	typ := models.IdentityType(c.Type)
	res, err := a.api.Identities.CreateIdentityContext(ctx, &identities.CreateIdentityParams{
		Body: &models.IdentityCreate{
			Name: &c.Args.Name, Type: &typ, IsAdmin: c.Admin, ExternalID: c.ExternalID,
		},
	}, auth)
	if err != nil {
		return err
	}
	return a.emitCreated("identity", res.Payload.Data)
}

// emitCreated prints the reply of a create: the new entity's id.
func (a *app) emitCreated(what string, d *models.CreatedRef) error {
	if _, err := present(d); err != nil {
		return err
	}
	return a.emit(d, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Created %s %s.\n", what, printable(str(d.ID)))
	})
}

// emitDeleted prints the reply of a delete.
func (a *app) emitDeleted(what, id string, d models.Empty) error {
	return a.emit(d, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Deleted %s %s.\n", what, id)
	})
}

type identityListCmd struct {
	app *app
	page
}

func (c *identityListCmd) Execute([]string) error {
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

	res, err := a.api.Identities.ListIdentitiesContext(ctx,
		&identities.ListIdentitiesParams{Limit: &c.Limit, Offset: &c.Offset}, auth)
	if err != nil {
		return err
	}
	data, err := items(res.Payload.Data)
	if err != nil {
		return err
	}
	if err := a.emit(data, func(w io.Writer) {
		row(w, "ID", "NAME", "TYPE", "ADMIN", "EXTERNAL ID")
		for _, d := range data {
			row(w, str(d.ID), str(d.Name), identityType(d.Type), yesNo(d.IsAdmin), d.ExternalID)
		}
	}); err != nil {
		return err
	}
	a.more(c.page, len(data), res.Payload.Meta)
	return nil
}

func identityType(t *models.IdentityType) string {
	if t == nil {
		return ""
	}
	return string(*t)
}

type identityShowCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *identityShowCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Identities.DetailIdentityContext(ctx,
		&identities.DetailIdentityParams{ID: c.Args.ID}, auth)
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
		field(w, "Type", identityType(d.Type))
		field(w, "Admin", yesNo(d.IsAdmin))
		field(w, "External ID", d.ExternalID)
		field(w, "Created", when(d.CreatedAt))
		field(w, "Updated", when(d.UpdatedAt))
	})
}

type identityUpdateCmd struct {
	app *app

	Name       *string `long:"name" value-name:"NAME"`
	Type       *string `long:"type" choice:"User" choice:"Router"`
	Admin      *bool   `long:"admin"`
	ExternalID *string `long:"external-id" value-name:"ID"`
	Args       idArg   `positional-args:"yes" required:"yes"`
}

func (*identityUpdateCmd) optionHelp() map[string]string {
	return map[string]string{
		"name":        "new unique name",
		"type":        "new kind of identity",
		"admin":       "may use the management API (--admin=false to revoke)",
		"external-id": `new external id ("" to clear)`,
	}
}

func (c *identityUpdateCmd) Execute([]string) error {
	a := c.app
	if c.Name == nil && c.Type == nil && c.Admin == nil && c.ExternalID == nil {
		return usagef("nothing to change: give --name, --type, --admin or --external-id")
	}
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Identities.PatchIdentityContext(ctx, &identities.PatchIdentityParams{
		ID: c.Args.ID,
		Body: &models.IdentityPatch{
			Name: c.Name, Type: c.Type, IsAdmin: c.Admin, ExternalID: c.ExternalID,
		},
	}, auth)
	if err != nil {
		return err
	}
	return a.emit(res.Payload.Data, func(w io.Writer) {
		_, _ = fmt.Fprintf(w, "Updated identity %s.\n", c.Args.ID)
	})
}

type identityDeleteCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *identityDeleteCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Identities.DeleteIdentityContext(ctx,
		&identities.DeleteIdentityParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	return a.emitDeleted("identity", c.Args.ID, res.Payload.Data)
}
