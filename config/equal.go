package config

import "reflect"

// Equal reports whether a and b are the same account with the same settings: every exported field
// (the destination, the password source and the oauth2: settings included, compared by value) and an
// inline password. It ignores what only records where an account was read from: the configuration
// file's path, and the password_env names of the whole file. Two nils are equal.
func (a *Account) Equal(b *Account) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(settingsOf(a), settingsOf(b))
}

// settingsOf is a copy of a without the fields Equal ignores.
func settingsOf(a *Account) Account {
	c := *a
	c.configPath, c.secretEnv = "", nil
	if a.OAuth2 != nil {
		o := *a.OAuth2
		o.given = nil
		c.OAuth2 = &o
	}
	return c
}
