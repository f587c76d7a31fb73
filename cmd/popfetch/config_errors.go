package main

// isConfigError reports whether err is a configuration error (exit 78). Placeholder until the config
// package lands.
func isConfigError(err error) bool { return false }
