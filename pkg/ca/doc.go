// Package ca is the certificate authority of sessioncert: it turns the CSR of
// an authenticated API session into a short-lived X.509 client certificate,
// an API Session Certificate.
//
// The package has four parts:
//
//   - Loading a CA: [LoadPEM] and [LoadFiles] read a signing certificate, its
//     chain and its private key; [New] checks them and returns a [CA]. All
//     signing goes through a [crypto.Signer], so a KMS or an HSM can hold the
//     key.
//   - Untrusted input: [ParseCSR] accepts exactly one PEM-encoded CSR with a
//     valid signature and an allowed key, and refuses everything else with a
//     [*CSRError] that names the reason.
//   - Signing: [CA.Sign] takes only the public key from the CSR. The leaf's
//     subject, its single SPIFFE URI SAN, its key usages and its validity are
//     decided here, and the issued certificate is verified against the CA's
//     chain before it is returned.
//   - A development PKI: [EnsureDevPKI] creates a root, an intermediate and a
//     localhost server certificate on first start and reuses them afterwards.
//
// The package never logs: every outcome is a return value, and errors are
// sentinels or typed errors meant for errors.Is and errors.As. Time and
// randomness come from the caller, so validity windows and serial numbers
// are exact in tests.
package ca
