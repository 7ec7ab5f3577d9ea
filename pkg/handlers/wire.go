package handlers

import (
	"time"

	"github.com/go-openapi/strfmt"

	"github.com/sessioncert/sessioncert/models"
	"github.com/sessioncert/sessioncert/pkg/store"
)

// dateTime converts a domain time to the wire's RFC 3339 UTC form with
// milliseconds.
func dateTime(t time.Time) *strfmt.DateTime {
	d := strfmt.DateTime(t.UTC().Truncate(time.Millisecond))
	return &d
}

func selfLink(href string) models.Links {
	return models.Links{"self": models.Link{Href: ptr(href)}}
}

func emptyMeta() *models.Meta { return &models.Meta{} }

func listMeta(p store.Page, total int) *models.ListMeta {
	return &models.ListMeta{
		Pagination: &models.Pagination{
			Limit:      ptr(int64(p.Limit)),
			Offset:     ptr(int64(p.Offset)),
			TotalCount: ptr(int64(total)),
		},
		FilterableFields: []string{},
	}
}

func emptyTags() models.Tags { return map[string]any{} }
