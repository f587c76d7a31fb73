package daemon

// jobLimit is how many polls the daemon runs at once: --jobs, lowered when polls run out of file
// descriptors or memory (Options.Exhausted: EMFILE, ENFILE, ENOMEM) and raised back slowly. Like TCP's
// congestion window: halved on a failure, but at most once for the polls started under one limit
// (a wave of polls that all hit the limit together lowers it once, not once per poll); raised by
// one after twice as many polls in a row ended without such a failure as it allows at once.
type jobLimit struct {
	max, cur int
	gen      int            // bumped at each lowering
	started  map[string]int // account -> gen when its running poll started
	clean    int            // polls ended in a row without resource exhaustion
}

func newJobLimit(jobs int) *jobLimit {
	return &jobLimit{max: jobs, cur: jobs, started: map[string]int{}}
}

// start notes that account's poll starts now.
func (l *jobLimit) start(account string) { l.started[account] = l.gen }

// end notes the end of account's poll, which ran out of file descriptors or memory if exhausted,
// and says how the limit changed: -1 lowered, +1 raised, 0 not at all.
func (l *jobLimit) end(account string, exhausted bool) int {
	gen, ok := l.started[account]
	delete(l.started, account)
	if exhausted {
		l.clean = 0
		if ok && gen == l.gen && l.cur > 1 {
			l.cur = max(1, l.cur/2)
			l.gen++
			return -1
		}
		return 0
	}
	l.clean++
	if l.cur < l.max && l.clean >= 2*l.cur {
		l.cur++
		l.clean = 0
		return +1
	}
	return 0
}
