package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/store"
)

// openGmail opens deliver: {gmail: …}: the Gmail API with the destination's own OAuth2 tokens (the
// account NAME@deliver), spooling under STATE_DIR/NAME.gmail-spool/.
func openGmail(a *config.Account) (store.Destination, error) {
	g, da := a.Deliver.Gmail, a.DeliveryAccount()
	if g == nil || da == nil {
		return nil, fmt.Errorf("account %q: deliver: gmail without its settings", a.Name)
	}
	so := &config.SecretOptions{}
	return store.NewGmail(store.GmailOptions{
		APIURL: g.APIURL, User: g.User, Labels: g.Labels, NeverMarkSpam: g.NeverMarkSpam,
		ProcessForCalendar: g.ProcessForCalendar, InternalDateSource: g.InternalDateSource,
		ReceivedHeader: a.TraceHeader, Timeout: a.Timeout,
		SpoolDir: filepath.Join(a.StateDir(), a.Name+".gmail-spool"),
		Token: func(ctx context.Context, refused string) (string, error) {
			if refused != "" {
				return da.OAuth2Refused(ctx, so, refused)
			}
			return da.Secret(ctx, so)
		},
		LoginHint: "popfetch oauth2 login --deliver " + a.Name,
	})
}
