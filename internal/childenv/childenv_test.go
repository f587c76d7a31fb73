package childenv

import (
	"slices"
	"testing"
)

func TestFilter(t *testing.T) {
	env := []string{"PATH=/bin", "WORK_PASSWORD=hunter2", "HOME=/home/a", "POPFETCH_ACCOUNT=old", "GOOGLE_SECRET=s=x"}
	got := Filter(env, []string{"WORK_PASSWORD", "GOOGLE_SECRET", "NOT_SET"}, "POPFETCH_ACCOUNT=work")
	want := []string{"PATH=/bin", "HOME=/home/a", "POPFETCH_ACCOUNT=work"}
	if !slices.Equal(got, want) {
		t.Fatalf("Filter = %q, want %q", got, want)
	}
}
