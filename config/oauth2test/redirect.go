package oauth2test

import "net/http"

type moved struct {
	location string
	status   int
}

// SetRedirect makes the token and device authorization endpoints answer every request with a
// redirect (status, e.g. 307, which asks the client to repeat the POST with its body) to location,
// as a hostile or misconfigured authorization server would. An empty location ends it. The requests
// still count in Grants.
func (s *Server) SetRedirect(location string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moved = nil
	if location != "" {
		s.moved = &moved{location: location, status: status}
	}
}

// redirect answers r with the redirect of SetRedirect, if one is set. s.mu is held.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) bool {
	if s.moved == nil {
		return false
	}
	http.Redirect(w, r, s.moved.location, s.moved.status)
	return true
}
