package main

import (
	"errors"
	"fmt"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/store"
)

// openSMTP opens an smtp destination with the profile's STARTTLS policy: verify (STARTTLS required,
// the certificate verified against the system's trust anchors plus ca_file, for the address's host)
// or opportunistic (STARTTLS when offered, not verified), which the profile gets by default only for
// a loopback address.
func openSMTP(a *config.Account) (store.Destination, error) {
	d := a.Deliver
	opts := store.SMTPOptions{ReceivedHeader: a.TraceHeader}
	if d.SMTPTLS == config.SMTPTLSOpportunistic {
		opts.StartTLS = true
	} else { // config.SMTPTLSVerify, and anything unknown
		opts.RequireTLS, opts.CAFile = true, d.SMTPCA
	}
	return store.NewSMTP(d.Address, d.Recipient, opts)
}

// smtpTLSHint adds to a failed STARTTLS of an smtp destination what the profile can do about it.
// The error keeps its chain (and so its exit code, 69).
func smtpTLSHint(a *config.Account, err error) error {
	var re *store.RelayError
	if err == nil || a.Deliver.Kind != config.DeliverSMTP || !errors.As(err, &re) || re.Stage != "STARTTLS" || re.Code != 0 {
		return err
	}
	hint := "deliver.smtp.tls is verify: name the server's CA with ca_file, or, for an MTA you trust on a network you trust, set tls: opportunistic"
	return fmt.Errorf("%w (%s)", err, hint)
}
