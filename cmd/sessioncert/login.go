package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sessioncert/sessioncert/client/current_api_session"
	"github.com/sessioncert/sessioncert/client/informational"
	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/sdk"
)

type loginCmd struct {
	app *app

	Method       string `long:"method" default:"password" choice:"password" choice:"cert" choice:"ext-jwt"`
	Username     string `long:"username" short:"u" env:"SESSIONCERT_USERNAME" value-name:"NAME"`
	Password     string `long:"password" short:"p" value-name:"PASSWORD"`
	PasswordFile string `long:"password-file" value-name:"FILE"`
	Cert         string `long:"cert" value-name:"FILE"`
	Key          string `long:"key" value-name:"FILE"`
	JWT          string `long:"jwt" value-name:"JWT"`
	JWTFile      string `long:"jwt-file" value-name:"FILE"`
}

func (*loginCmd) optionHelp() map[string]string {
	return map[string]string{
		"method":   "how to log in",
		"username": "username, for --method password",
		"password": "password; other local users may see it in the process list, so prefer " +
			"--password-file, $" + envPassword + " or the prompt",
		"password-file": "read the password from the first line of FILE",
		"cert":          "client certificate (PEM), for --method cert",
		"key":           "private key of --cert (PEM)",
		"jwt":           "external JWT, for --method ext-jwt (or $" + envJWT + ")",
		"jwt-file":      "read the external JWT from the first line of FILE",
	}
}

func (l *loginCmd) Execute([]string) error {
	a := l.app
	creds, err := l.credentials()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	ok, err := creds.Login(ctx, a.api)
	if err != nil {
		return err
	}

	d, err := present(ok.Payload.Data)
	if err != nil {
		return err
	}
	token := ok.ZtSession
	if token == "" {
		token = str(d.Token)
	}
	saved := &savedSession{
		Controller:   a.controllerURL(),
		Token:        token,
		SessionID:    str(d.ID),
		IdentityID:   str(d.IdentityID),
		IdentityName: identityName(d.Identity),
		LoggedInAt:   time.Now().UTC(),
	}
	if a.caFile != "" {
		if saved.CA, err = filepath.Abs(a.caFile); err != nil {
			return fmt.Errorf("locate the ca bundle: %w", err)
		}
	}
	if err := a.saveSession(saved); err != nil {
		return err
	}
	return a.printSession(d)
}

// credentials checks the flags of the method and returns what logs in.
func (l *loginCmd) credentials() (sdk.Credentials, error) {
	a := l.app
	switch l.Method {
	case sdk.MethodCert:
		if l.Cert == "" || l.Key == "" {
			return nil, usagef("--method cert needs --cert and --key")
		}
		cert, err := tls.LoadX509KeyPair(l.Cert, l.Key)
		if err != nil {
			return nil, fmt.Errorf("load the client certificate: %w", err)
		}
		return sdk.Cert{Certificate: cert, RootCAs: a.roots}, nil
	case sdk.MethodExtJWT:
		jwt, err := a.secret(secretSource{what: "JWT", flag: "--jwt", value: l.JWT,
			file: l.JWTFile, fileFlag: "--jwt-file", env: envJWT})
		if err != nil {
			return nil, err
		}
		return sdk.ExtJWT{Token: func(context.Context) (string, error) { return jwt, nil }}, nil
	default:
		if l.Username == "" {
			return nil, usagef("--method password needs --username")
		}
		pw, err := a.secret(secretSource{what: "password", flag: "--password", value: l.Password,
			file: l.PasswordFile, fileFlag: "--password-file", env: envPassword})
		if err != nil {
			return nil, err
		}
		return sdk.Password{Username: l.Username, Password: pw}, nil
	}
}

type logoutCmd struct{ app *app }

func (l *logoutCmd) Execute([]string) error {
	a := l.app
	// Logging out twice is not a mistake: the goal is reached either way.
	saved, err := a.currentSession()
	if errors.Is(err, errNotLoggedIn) {
		return a.emit(map[string]any{}, func(w io.Writer) {
			_, _ = fmt.Fprintf(w, "Not logged in to %s.\n", a.controllerURL())
		})
	}
	if err != nil {
		return err
	}
	auth := sessionAuth(saved)
	ctx, cancel := a.context()
	defer cancel()

	// A session that has already ended is as good as logged out.
	var data models.Empty = map[string]any{}
	ended := false
	res, err := a.api.CurrentAPISession.DeleteCurrentAPISessionContext(ctx,
		&current_api_session.DeleteCurrentAPISessionParams{}, auth)
	switch {
	case isCode(err, sdk.CodeUnauthorized):
		ended = true
	case err != nil:
		return err
	default:
		data = res.Payload.Data
	}
	if err := a.forgetSession(); err != nil {
		return err
	}
	return a.emit(data, func(w io.Writer) {
		if ended {
			_, _ = fmt.Fprintf(w, "The session of %s had already ended; forgot its token.\n",
				printable(saved.IdentityName))
			return
		}
		_, _ = fmt.Fprintf(w, "Logged %s out of %s.\n", printable(saved.IdentityName),
			saved.Controller)
	})
}

type whoamiCmd struct{ app *app }

func (c *whoamiCmd) Execute([]string) error {
	a := c.app
	auth, err := a.authed()
	if err != nil {
		return err
	}
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.CurrentAPISession.GetCurrentAPISessionContext(ctx,
		&current_api_session.GetCurrentAPISessionParams{}, auth)
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	return a.printSession(d)
}

// printSession shows the current session, without its token: that stays in
// the session file.
func (a *app) printSession(d *models.CurrentAPISessionDetail) error {
	shown := *d
	shown.Token = nil
	return a.emit(&shown, func(w io.Writer) {
		field(w, "Controller", a.controllerURL())
		field(w, "Identity", identityName(d.Identity))
		field(w, "Identity ID", str(d.IdentityID))
		field(w, "Session ID", str(d.ID))
		field(w, "Authenticator ID", str(d.AuthenticatorID))
		field(w, "IP address", str(d.IPAddress))
		field(w, "Created", when(d.CreatedAt))
		field(w, "Last activity", whenTime(time.Time(d.LastActivityAt)))
		field(w, "Expires", when(d.ExpiresAt))
		field(w, "Idle timeout", seconds(d.ExpirationSeconds))
	})
}

func identityName(r *models.EntityRef) string {
	if r == nil {
		return ""
	}
	return str(r.Name)
}

type versionCmd struct{ app *app }

func (c *versionCmd) Execute([]string) error {
	a := c.app
	ctx, cancel := a.context()
	defer cancel()

	res, err := a.api.Informational.ListVersionContext(ctx, &informational.ListVersionParams{})
	if err != nil {
		return err
	}
	d, err := present(res.Payload.Data)
	if err != nil {
		return err
	}
	return a.emit(d, func(w io.Writer) {
		field(w, "Controller", a.controllerURL())
		field(w, "Version", str(d.Version))
		field(w, "Revision", str(d.Revision))
		field(w, "Build date", str(d.BuildDate))
		field(w, "Go", str(d.RuntimeVersion))
		var apis []string
		for name, versions := range d.APIVersions {
			for v, api := range versions {
				apis = append(apis, fmt.Sprintf("%s %s at %s", name, v, str(api.Path)))
			}
		}
		sort.Strings(apis)
		field(w, "APIs", strings.Join(apis, ", "))
	})
}

// isCode reports whether err is the controller's reply with the error code.
func isCode(err error, code string) bool {
	ae, ok := sdk.AsAPIError(err)
	return ok && ae.Code == code
}
