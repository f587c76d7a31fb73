package config

import "slices"

// SecretEnv returns the names of the environment variables that hold secrets of the account's
// configuration file: every account's password_env and oauth2.client_secret_env. Programs popfetch
// runs (an MDA, password_command, client_secret_command) get popfetch's environment without them
// (internal/childenv), so that no child, and nothing a child runs, inherits a password it was not
// given.
func (a *Account) SecretEnv() []string { return slices.Clone(a.secretEnv) }

// shareSecretEnv gives every account of cfg the names of all the file's secret-bearing variables: a
// password_command of one account must not see the password_env of another.
func shareSecretEnv(cfg *Config) {
	var names []string
	add := func(s PasswordSource) {
		if s.Kind == SourceEnv && !slices.Contains(names, s.Env) {
			names = append(names, s.Env)
		}
	}
	for _, a := range cfg.Accounts {
		add(a.Password)
		if a.OAuth2 != nil {
			add(a.OAuth2.ClientSecret)
		}
	}
	for _, a := range cfg.Accounts {
		a.secretEnv = names
	}
}
