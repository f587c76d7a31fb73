package main

// classify maps errors of the popfetch packages (config, fetch, store) to exit codes. Packages are
// added here as they grow typed errors; anything unknown is an internal error.
func classify(err error) int {
	if code, ok := secretExitCode(err); ok {
		return code
	}
	if isConfigError(err) {
		return exitConfig
	}
	return exitSoftware
}
