package config

import "strings"

// DeliverySuffix ends the name of the account derived from a destination's credentials
// ("work@deliver"): '@' cannot occur in an account name, so the keyring key and the OAuth2 token file
// of a destination never collide with an account's.
const DeliverySuffix = "@deliver"

// DeliveryAccount returns the account that holds the destination's own server and credentials
// (deliver: imap:), named ACCOUNT@deliver, so that everything that works for an account's password
// (keyring key ACCOUNT@deliver, password_command, password_env, inline) or OAuth2 login (token file
// ACCOUNT@deliver.oauth2) works for it unchanged. Its Host, Port, TLS, CAFile, Fingerprint, User,
// AllowPlaintextAuth, OAuth2 and Timeout describe the destination server; it has no destination of
// its own. For deliver: gmail: it holds the Gmail API's root as Host and the mailbox as User, and its
// oauth2:. It is nil when the destination has no credentials (maildir, mbox, mda, lmtp, smtp).
func (a *Account) DeliveryAccount() *Account {
	switch {
	case a.Deliver.IMAP != nil:
		return a.Deliver.IMAP.account
	case a.Deliver.Kind == DeliverGmail:
		return a.gmailDeliveryAccount()
	}
	return nil
}

// IsDeliveryAccount reports whether a is the derived account of a destination; Owner is then the
// account it belongs to.
func (a *Account) IsDeliveryAccount() bool { return strings.HasSuffix(a.Name, DeliverySuffix) }

// Owner returns the name of the account a destination account belongs to ("work" for
// "work@deliver"), or a.Name.
func (a *Account) Owner() string { return strings.TrimSuffix(a.Name, DeliverySuffix) }

// commandFor is the popfetch command (password set, oauth2 login) for this account, with --deliver
// for a destination account.
func (a *Account) commandFor(cmd string) string {
	if a.IsDeliveryAccount() {
		return cmd + " --deliver " + a.Owner()
	}
	return cmd + " " + a.Name
}

// StateDir is the configuration's state directory (where an IMAP or Gmail destination spools its
// batches).
func (a *Account) StateDir() string { return a.stateDir }
