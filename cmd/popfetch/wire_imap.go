package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/store"
)

// openIMAP opens deliver: imap: (store.IMAP) with the credentials of the account's delivery account
// (ACCOUNT@deliver: keyring key, password source or OAuth2 token).
func openIMAP(a *config.Account) (store.Destination, error) {
	d, da := a.Deliver.IMAP, a.DeliveryAccount()
	if d == nil || da == nil {
		return nil, fmt.Errorf("account %q: deliver: imap: is incomplete", a.Name)
	}
	mode := map[string]string{config.TLSImplicit: store.IMAPImplicitTLS, config.TLSStartTLS: store.IMAPStartTLS,
		config.TLSNone: store.IMAPNoTLS}[da.TLS]
	mech := ""
	if da.OAuth2 != nil {
		mech = da.Auth // xoauth2 or oauthbearer
	}
	return store.NewIMAP(store.IMAPOptions{
		Addr: net.JoinHostPort(da.Host, strconv.Itoa(da.Port)), TLS: mode, CAFile: da.CAFile, Fingerprint: da.Fingerprint,
		User: da.User, Mechanism: mech, AllowPlaintext: da.AllowPlaintextAuth,
		Secret: func(ctx context.Context) (string, error) {
			return da.Secret(ctx, &config.SecretOptions{})
		},
		Mailbox: d.Mailbox, Create: d.Create, Flags: d.Flags, InternalDate: d.InternalDate,
		Account: a.Name, SpoolDir: a.StateDir(), ReceivedHeader: a.TraceHeader, Timeout: da.Timeout,
	})
}

// deliverFlag makes `password set|delete` and `oauth2 login` act on the account's destination
// (deliver: imap:) instead of its POP3 server.
// A new flag each call: commands must not share flag values.
func deliverFlag() cli.Flag {
	return &cli.BoolFlag{Name: "deliver", Usage: "the credentials of ACCOUNT's destination (deliver: imap: or gmail:), kept as ACCOUNT@deliver"}
}

// deliveryAccount returns a's destination account, or a usage error when its destination has no
// credentials.
func deliveryAccount(cfg *config.Config, a *config.Account) (*config.Account, error) {
	da := a.DeliveryAccount()
	if da == nil {
		return nil, withCode(exitUsage, fmt.Errorf("account %q delivers to %s, which has no login of its own; --deliver is for deliver: imap: and deliver: gmail: with their own credentials (see %s)",
			a.Name, a.Deliver, cfg.Path))
	}
	return da, nil
}
