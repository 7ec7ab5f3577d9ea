package main

import (
	"io"
	"time"

	"github.com/sessioncert/sessioncert/client/api_sessions"
)

func (a *app) sessionCommands() []command {
	return []command{
		{name: "list", short: "list live API sessions", data: &sessionListCmd{app: a}},
		{name: "show", short: "show one API session", data: &sessionShowCmd{app: a}},
		{name: "delete", short: "end an API session and every certificate it holds",
			data: &sessionDeleteCmd{app: a}},
	}
}

type sessionListCmd struct {
	app *app
	page
}

func (c *sessionListCmd) Execute([]string) error {
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

	res, err := a.api.APISessions.ListAPISessionsContext(ctx,
		&api_sessions.ListAPISessionsParams{Limit: &c.Limit, Offset: &c.Offset}, auth)
	if err != nil {
		return err
	}
	data, err := items(res.Payload.Data)
	if err != nil {
		return err
	}
	if err := a.emit(data, func(w io.Writer) {
		row(w, "ID", "IDENTITY", "IP ADDRESS", "CREATED", "EXPIRES")
		for _, d := range data {
			row(w, str(d.ID), identityName(d.Identity), str(d.IPAddress), when(d.CreatedAt),
				when(d.ExpiresAt))
		}
	}); err != nil {
		return err
	}
	a.more(c.page, len(data), res.Payload.Meta)
	return nil
}

type sessionShowCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *sessionShowCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.APISessions.DetailAPISessionContext(ctx,
		&api_sessions.DetailAPISessionParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	return a.emit(d, func(w io.Writer) {
		field(w, "ID", str(d.ID))
		field(w, "Identity", identityName(d.Identity))
		field(w, "Identity ID", str(d.IdentityID))
		field(w, "Authenticator ID", str(d.AuthenticatorID))
		field(w, "IP address", str(d.IPAddress))
		field(w, "Created", when(d.CreatedAt))
		field(w, "Last activity", whenTime(time.Time(d.LastActivityAt)))
		field(w, "Expires", when(d.ExpiresAt))
		field(w, "Idle timeout", seconds(d.ExpirationSeconds))
	})
}

type sessionDeleteCmd struct {
	app  *app
	Args idArg `positional-args:"yes" required:"yes"`
}

func (c *sessionDeleteCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.APISessions.DeleteAPISessionContext(ctx,
		&api_sessions.DeleteAPISessionParams{ID: c.Args.ID}, auth)
	if err != nil {
		return err
	}
	return a.emitDeleted("API session", c.Args.ID, res.Payload.Data)
}
