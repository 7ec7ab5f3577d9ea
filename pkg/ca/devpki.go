package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the files of a development PKI inside its directory.
const (
	devRootCert     = "ca-root.pem"
	devCACert       = "ca-intermediate.pem"
	devCAKey        = "ca-intermediate.key"
	devServerCert   = "server.pem"
	devServerKey    = "server.key"
	devBundle       = "ca-bundle.pem"
	devCertFileMode = 0o644
	devKeyFileMode  = 0o600
)

// Validity of the development certificates.
const (
	// devBackdate lets peers with a slow clock accept certificates made a
	// moment ago.
	devBackdate     = time.Hour
	devRootYears    = 10
	devCAYears      = 5
	devServerYears  = 1
	devServerRenew  = 30 * 24 * time.Hour
	devServerCN     = "localhost"
	devOrganization = "sessioncert development"
)

// ErrDevPKIIncomplete is returned by EnsureDevPKI when the directory holds
// part of a development PKI that it cannot complete without replacing the
// CA that existing certificates chain to. Removing the directory, or the
// files the error names, starts afresh.
var ErrDevPKIIncomplete = errors.New("ca: development pki is incomplete")

// DevPKI lists the files of a development PKI; every field but the flags is
// a path.
type DevPKI struct {
	// RootCert is the self-signed root certificate.
	RootCert string
	// CACert is the signing CA, the intermediate, followed by the root: pass
	// it to LoadFiles together with CAKey.
	CACert string
	// CAKey is the intermediate's private key, PKCS #8.
	CAKey string
	// ServerCert is the localhost server certificate followed by the
	// intermediate.
	ServerCert string
	// ServerKey is the server certificate's private key, PKCS #8.
	ServerKey string
	// Bundle is the root alone: what a client trusts.
	Bundle string

	// CreatedCA is true when this call created the root and the
	// intermediate.
	CreatedCA bool
	// IssuedServer is true when this call issued the server certificate.
	IssuedServer bool
}

// EnsureDevPKI makes sure dir holds a development PKI and returns its files.
//
// On first use it creates, with ECDSA P-256 keys: a root valid for 10 years,
// whose key is discarded once the intermediate is signed; an intermediate,
// the signing CA, valid for 5 years; and a server certificate for
// "localhost", 127.0.0.1 and ::1, valid for 1 year, for server
// authentication. Each certificate is backdated by an hour and ends no later
// than its issuer. Keys are written with mode 0600, certificates with 0644,
// each through a temporary file renamed into place, and the intermediate
// certificate last: until it exists, the CA counts as absent and a later
// call starts the CA again.
//
// Later calls load what is there. The server certificate and key are issued
// again when either is missing or unreadable, they do not match, the
// certificate does not chain to the root, or it expires within 30 days.
//
// now is the current time and must not be zero; rnd is the source of serial
// numbers, nil meaning crypto/rand.Reader. It returns ErrDevPKIIncomplete
// when the CA is missing but a server certificate exists, or the CA's files
// are partial; the errors of LoadFiles and New when the CA files do not load
// or are no longer valid; and file system errors.
func EnsureDevPKI(dir string, now time.Time, rnd io.Reader) (*DevPKI, error) {
	if dir == "" {
		return nil, errors.New("ca: dev pki: no directory")
	}
	if now.IsZero() {
		return nil, errors.New("ca: dev pki: zero time")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: dev pki: %w", err)
	}
	p := &DevPKI{
		RootCert:   filepath.Join(dir, devRootCert),
		CACert:     filepath.Join(dir, devCACert),
		CAKey:      filepath.Join(dir, devCAKey),
		ServerCert: filepath.Join(dir, devServerCert),
		ServerKey:  filepath.Join(dir, devServerKey),
		Bundle:     filepath.Join(dir, devBundle),
	}

	// The CA: created only when none of it is in use.
	hasCA, err := exists(p.CACert)
	if err != nil {
		return nil, err
	}
	if !hasCA {
		hasServer, err := exists(p.ServerCert)
		if err != nil {
			return nil, err
		}
		if hasServer {
			return nil, fmt.Errorf("%w: %s exists but %s does not", ErrDevPKIIncomplete,
				devServerCert, devCACert)
		}
		if err := createDevCA(p, now, rnd); err != nil {
			return nil, err
		}
		p.CreatedCA = true
	}
	ca, err := loadDevCA(p, now)
	if err != nil {
		return nil, err
	}

	// The files derived from the CA, restored if they went missing.
	for _, f := range [...]string{p.RootCert, p.Bundle} {
		ok, err := exists(f)
		if err != nil {
			return nil, err
		}
		if !ok {
			if err := writeFileAtomic(f, certPEM(ca.root), devCertFileMode); err != nil {
				return nil, err
			}
		}
	}

	// The server certificate: kept while it is usable and not close to expiry.
	if !devServerUsable(p, ca, now) {
		if err := issueDevServer(p, ca, now, rnd); err != nil {
			return nil, err
		}
		p.IssuedServer = true
	}
	return p, nil
}

// createDevCA writes a new root and intermediate.
func createDevCA(p *DevPKI, now time.Time, rnd io.Reader) error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return fmt.Errorf("ca: dev pki: generate key: %w", err)
	}
	rootTmpl := &x509.Certificate{
		Subject:               devName("sessioncert development root"),
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.AddDate(devRootYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	root, err := createCert(rootTmpl, nil, rootKey.Public(), rootKey, rnd)
	if err != nil {
		return err
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return fmt.Errorf("ca: dev pki: generate key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               devName("sessioncert development intermediate"),
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.AddDate(devCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	inter, err := createCert(caTmpl, root, caKey.Public(), rootKey, rnd)
	if err != nil {
		return err
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return err
	}

	// The intermediate certificate goes last: its presence is what marks the
	// CA as created, so an interrupted run leaves files a later run replaces.
	writes := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{p.CAKey, caKeyPEM, devKeyFileMode},
		{p.RootCert, certPEM(root), devCertFileMode},
		{p.Bundle, certPEM(root), devCertFileMode},
		{p.CACert, append(certPEM(inter), certPEM(root)...), devCertFileMode},
	}
	for _, w := range writes {
		if err := writeFileAtomic(w.path, w.data, w.mode); err != nil {
			return err
		}
	}
	return nil
}

// devCA is a loaded development CA.
type devCA struct {
	inter, root *x509.Certificate
	key         crypto.Signer
}

// loadDevCA loads the intermediate, the root and the intermediate's key, and
// checks them as New would.
func loadDevCA(p *DevPKI, now time.Time) (*devCA, error) {
	hasKey, err := exists(p.CAKey)
	if err != nil {
		return nil, err
	}
	if !hasKey {
		return nil, fmt.Errorf("%w: %s exists but %s does not", ErrDevPKIIncomplete,
			devCACert, devCAKey)
	}
	chain, key, err := LoadFiles(p.CACert, p.CAKey)
	if err != nil {
		return nil, err
	}
	if len(chain) != 2 {
		return nil, fmt.Errorf("%w: %s holds %d certificates, want 2",
			ErrDevPKIIncomplete, devCACert, len(chain))
	}
	if err := checkSigner(chain[0], key); err != nil {
		return nil, err
	}
	if err := checkChain(chain, now); err != nil {
		return nil, err
	}
	return &devCA{inter: chain[0], root: chain[1], key: key}, nil
}

// devServerUsable reports whether the server certificate and key on disk
// belong together, chain to root for localhost, and stay valid for more than
// devServerRenew. Any failure to read them counts as unusable: they are ours
// to replace.
func devServerUsable(p *DevPKI, ca *devCA, now time.Time) bool {
	chain, key, err := LoadFiles(p.ServerCert, p.ServerKey)
	if err != nil {
		return false
	}
	leaf := chain[0]
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return false
	}
	if leaf.NotAfter.Sub(now) <= devServerRenew {
		return false
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.root)
	intermediates.AddCert(ca.inter)
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName:       devServerCN,
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err == nil
}

// issueDevServer writes a new server key and certificate.
func issueDevServer(p *DevPKI, ca *devCA, now time.Time, rnd io.Reader) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return fmt.Errorf("ca: dev pki: generate key: %w", err)
	}
	notAfter := now.AddDate(devServerYears, 0, 0)
	if notAfter.After(ca.inter.NotAfter) {
		notAfter = ca.inter.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               devName(devServerCN),
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{devServerCN},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leaf, err := createCert(tmpl, ca.inter, key.Public(), ca.key, rnd)
	if err != nil {
		return err
	}
	serverKeyPEM, err := keyPEM(key)
	if err != nil {
		return err
	}

	// Key first, certificate last, as for the CA: a run cut between the two
	// leaves a pair that does not match, which the next run replaces.
	if err := writeFileAtomic(p.ServerKey, serverKeyPEM, devKeyFileMode); err != nil {
		return err
	}
	chain := append(certPEM(leaf), certPEM(ca.inter)...)
	return writeFileAtomic(p.ServerCert, chain, devCertFileMode)
}

// createCert signs tmpl with a fresh random serial; a nil parent makes it
// self-signed.
func createCert(
	tmpl, parent *x509.Certificate,
	pub crypto.PublicKey,
	signer crypto.Signer,
	rnd io.Reader,
) (*x509.Certificate, error) {
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rnd, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("ca: dev pki: create %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

func devName(cn string) pkix.Name {
	return pkix.Name{Organization: []string{devOrganization}, CommonName: cn}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: dev pki: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// exists reports whether path exists; errors other than absence are returned.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("ca: dev pki: %w", err)
}

// writeFileAtomic replaces path with data, so that readers, and a later run
// after a crash, see either the old file or the whole new one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: dev pki: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("ca: dev pki: write %s: %w", path, err)
		}
	}()

	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // G304: the operator's data directory, not request input
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
