package handlers

import (
	"runtime"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/restapi/operations/informational"
)

type listVersionHandler struct{ h *Handlers }

func (l listVersionHandler) Handle(_ informational.ListVersionParams) informational.ListVersionResponder {
	v := l.h.cfg.Version
	return informational.NewListVersionOK().WithPayload(&models.VersionEnvelope{
		Data: &models.Version{
			Version:        ptr(v.Version),
			Revision:       ptr(v.Revision),
			BuildDate:      ptr(v.BuildDate),
			RuntimeVersion: ptr(runtime.Version()),
			APIVersions: map[string]map[string]models.APIVersion{
				"edge-client": {"v1": {Path: ptr("/edge/client/v1")}},
			},
			Capabilities: []string{},
		},
		Meta: emptyMeta(),
	})
}
