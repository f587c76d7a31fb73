package httpsafe

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestNewClientRefusesRedirects(t *testing.T) {
	var stolen atomic.Int32
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) }))
	defer thief.Close()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, thief.URL+"/steal?x=1", status)
		}))
		resp, err := NewClient(0).Post(origin.URL+"/token?q=1", "application/x-www-form-urlencoded",
			strings.NewReader("grant_type=refresh_token&refresh_token=secret"))
		origin.Close()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("HTTP %d: no error", status)
		}
		re, ok := AsRedirect(err)
		if !ok {
			t.Fatalf("HTTP %d: %v is not a *RedirectError", status, err)
		}
		if re.Status != status || re.From != origin.URL+"/token" || re.To != thief.URL+"/steal" {
			t.Errorf("HTTP %d: %+v", status, re)
		}
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
}
