// Package version carries the build's version, revision and date, set by the
// Makefile through -ldflags -X.
package version

// Set at build time; the defaults mark a build made without the Makefile.
var (
	Version   = "dev"
	Revision  = "unknown"
	BuildDate = "unknown"
)
