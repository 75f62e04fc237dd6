package engine

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scripted scenarios in the manner of etcd's raft: each file under
// ../testdata/engine is a sequence of commands, each followed by "----" and
// the output it must produce, then a blank line. Run with -update to rewrite
// the expected output from the actual one, then review the diff.
//
// Commands (t is seconds after on-sale, fractions allowed):
//
//	event [plan=small|riverside] [ttl=60] [max=4] [grace=600] [salesend=S] [starts=S]
//	      [maxhold=S] [orphans=allow|prevent] [focal=X,Y]
//	hold t=T cust=C res=R seats=A-1,A-2     ("ok existing=R0": an unchanged re-hold)
//	best t=T cust=C res=R n=N [cat=NAME] [zone=NAME]
//	update t=T [name=…] [onsale=S] [salesend=S] [ttl=S] [max=N] [maxhold=S]
//	       [orphans=…] [focal=X,Y] [status=cancelled] [reset=field,…]
//	info                                    (the settings in effect)
//	cancel t=T cust=C res=R
//	pay t=T cust=C res=R                    (BeginPayment)
//	confirm t=T res=R attempt=N booking=B
//	fail t=T res=R attempt=N
//	block t=T seats=…   /   unblock t=T seats=…
//	tick t=T
//	get t=T cust=C res=R                    (Reservation, as the customer reads it)
//	seats [ids=…]                           (non-available seats, or the listed ones)
//	bookings
//	check                                   (replay and snapshot round trip)
//
// Every command's output lists the records it returned, one a line, then
// either "ok" or "error <code> [seats]".

var update = flag.Bool("update", false, "rewrite ../testdata/engine/*.txt with the actual output")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "engine", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d scenario files, want at least 3", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptCase struct {
	pre  []string // comments and blank lines before the command
	line int
	cmd  string
	want []string
	got  []string
}

func parseScript(t *testing.T, path string) ([]*scriptCase, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var cases []*scriptCase
	var pre []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre = append(pre, l)
			continue
		}
		c := &scriptCase{pre: pre, line: i + 1, cmd: l}
		pre = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command %q is not followed by ----", path, i+1, l)
		}
		i += 2
		for ; i < len(lines) && lines[i] != ""; i++ {
			c.want = append(c.want, lines[i])
		}
		cases = append(cases, c)
	}
	return cases, pre
}

func runScript(t *testing.T, path string) {
	cases, tail := parseScript(t, path)
	s := &script{t: t}
	for _, c := range cases {
		c.got = s.run(c.cmd)
		if !*update && !slices.Equal(c.got, c.want) {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, c.line, c.cmd, strings.Join(c.got, "\n"), strings.Join(c.want, "\n"))
		}
	}
	if !*update {
		return
	}
	var b bytes.Buffer
	for _, c := range cases {
		for _, p := range c.pre {
			b.WriteString(p + "\n")
		}
		b.WriteString(c.cmd + "\n----\n")
		for _, g := range c.got {
			b.WriteString(g + "\n")
		}
		b.WriteString("\n")
	}
	for _, p := range tail {
		if strings.TrimSpace(p) != "" {
			b.WriteString(p + "\n")
		}
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// script interprets one scenario file.
type script struct {
	t *testing.T
	h *harness
}

// scriptFailure turns a harness failure into command output, so that a
// broken invariant shows up in the diff where it happened.
type scriptFailure struct{ msg string }

type scriptTB struct{}

func (scriptTB) Helper() {}
func (scriptTB) Fatalf(format string, args ...any) {
	panic(scriptFailure{fmt.Sprintf(format, args...)})
}

func (s *script) run(cmd string) (out []string) {
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(scriptFailure)
			if !ok {
				panic(p)
			}
			out = append(out, "FAILED: "+f.msg)
		}
	}()
	fields := strings.Fields(cmd)
	args := make(map[string]string)
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			panic(scriptFailure{fmt.Sprintf("argument %q is not key=value", f)})
		}
		args[k] = v
	}
	arg := func(k string) string {
		v, ok := args[k]
		if !ok {
			panic(scriptFailure{fmt.Sprintf("%s needs %s=", fields[0], k)})
		}
		return v
	}
	num := func(k string, def float64) float64 {
		v, ok := args[k]
		if !ok {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(scriptFailure{fmt.Sprintf("%s=%q: %v", k, v, err)})
		}
		return f
	}
	ids := func(k string) []string {
		v := arg(k)
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	now := func() time.Time { return at(num("t", 0)) }
	if fields[0] != "event" && s.h == nil {
		s.h = newHarness(scriptTB{}, smallDef())
	}
	switch fields[0] {
	case "event":
		def := smallDef()
		if args["plan"] == "riverside" {
			def = venueDef(s.t, "riverside-concert-hall.json", 4, 60)
		}
		def.HoldTTLSeconds = int(num("ttl", float64(def.HoldTTLSeconds)))
		def.MaxSeatsPerCustomer = int(num("max", float64(def.MaxSeatsPerCustomer)))
		def.PaymentGraceSeconds = int(num("grace", 0))
		if _, ok := args["salesend"]; ok {
			def.SalesEndAt = at(num("salesend", 0))
		}
		if _, ok := args["starts"]; ok {
			def.StartsAt = at(num("starts", 0))
		}
		def.MaxHoldSeconds = int(num("maxhold", 0))
		def.OrphanSeats = args["orphans"]
		if _, ok := args["focal"]; ok {
			def.FocalPoint = focal(ids("focal"))
		}
		s.h = newHarness(scriptTB{}, def)
		info := s.h.ev.Info()
		return []string{fmt.Sprintf("event %s: %d seats, ttl %ds, max %d per customer, grace %ds",
			info.ID, info.Capacity, info.HoldTTLSeconds, info.MaxSeatsPerCustomer, info.PaymentGraceSeconds)}
	case "hold":
		recs, id, err := s.h.holdID(now(), arg("cust"), arg("res"), ids("seats")...)
		out := s.result(recs, err)
		if err == nil && id != arg("res") {
			out[len(out)-1] = "ok existing=" + id
		}
		return out
	case "best":
		want := BestAvailable{Quantity: int(num("n", 0)), Category: args["cat"], Zone: args["zone"]}
		recs, err := s.h.holdBest(now(), arg("cust"), arg("res"), want)
		return s.result(recs, err)
	case "update":
		var p EventPatch
		for k, v := range args {
			switch k {
			case "t":
			case "name":
				p.Name = ptr(strings.ReplaceAll(v, "_", " "))
			case "onsale":
				p.OnSaleAt = ptr(at(num(k, 0)))
			case "salesend":
				p.SalesEndAt = ptr(at(num(k, 0)))
			case "ttl":
				p.HoldTTLSeconds = ptr(int(num(k, 0)))
			case "max":
				p.MaxSeatsPerCustomer = ptr(int(num(k, 0)))
			case "maxhold":
				p.MaxHoldSeconds = ptr(int(num(k, 0)))
			case "orphans":
				p.OrphanSeats = ptr(v)
			case "focal":
				p.FocalPoint = focal(ids(k))
			case "status":
				p.Status = ptr(v)
			case "reset":
				p.Reset = ids(k)
			default:
				panic(scriptFailure{"update: unknown argument " + k})
			}
		}
		recs, err := s.h.update(now(), p)
		return s.result(recs, err)
	case "info":
		i := s.h.ev.Info()
		return []string{fmt.Sprintf("%s %q on sale %s–%s, ttl %ds, max %d, max hold %ds, orphans %s, focal %g,%g",
			i.Status, i.Name, rel(i.OnSaleAt.UnixMilli()), rel(i.SalesEndAt.UnixMilli()), i.HoldTTLSeconds,
			i.MaxSeatsPerCustomer, i.MaxHoldSeconds, i.OrphanSeats, i.FocalPoint.X, i.FocalPoint.Y)}
	case "cancel":
		recs, err := s.h.cancel(now(), arg("cust"), arg("res"))
		return s.result(recs, err)
	case "pay":
		recs, attempt, err := s.h.pay(now(), arg("cust"), arg("res"))
		out := s.result(recs, err)
		if err == nil {
			out = append(out[:len(out)-1], fmt.Sprintf("ok attempt=%d", attempt))
		}
		return out
	case "confirm":
		recs, err := s.h.confirm(now(), arg("res"), uint32(num("attempt", 0)), arg("booking"))
		return s.result(recs, err)
	case "fail":
		recs, err := s.h.fail(now(), arg("res"), uint32(num("attempt", 0)))
		return s.result(recs, err)
	case "block":
		recs, err := s.h.block(now(), ids("seats")...)
		return s.result(recs, err)
	case "unblock":
		recs, err := s.h.unblock(now(), ids("seats")...)
		return s.result(recs, err)
	case "tick":
		return s.result(s.h.tick(now()), nil)
	case "get":
		v, err := s.h.ev.Reservation(now(), arg("cust"), arg("res"))
		if err != nil {
			return s.result(nil, err)
		}
		line := fmt.Sprintf("%s %s %s [%s] expires=%s total=%d %s", v.ID, v.CustomerID, v.Status,
			strings.Join(v.Seats, " "), rel(v.ExpiresAt.UnixMilli()), v.TotalCents, v.Currency)
		if v.Attempts > 0 {
			line += fmt.Sprintf(" attempts=%d", v.Attempts)
		}
		if v.BookingID != "" {
			line += " booking=" + v.BookingID
		}
		if v.ReleaseReason != ReasonNone {
			line += " reason=" + v.ReleaseReason.String()
		}
		return []string{line}
	case "seats":
		st := s.h.ev.Statuses()
		var out []string
		if _, ok := args["ids"]; ok {
			for _, id := range ids("ids") {
				i, ok := s.h.ev.Plan().SeatIndex(id)
				if !ok {
					out = append(out, id+" unknown")
					continue
				}
				out = append(out, id+" "+st[i].String())
			}
			return out
		}
		for i, x := range st {
			if x != SeatAvailable {
				out = append(out, s.h.ev.Plan().Seats[i].ID+" "+x.String())
			}
		}
		c := s.h.ev.Counts()
		return append(out, fmt.Sprintf("counts available=%d reserved=%d booked=%d blocked=%d", c.Available, c.Reserved, c.Booked, c.Blocked))
	case "bookings":
		var out []string
		for _, b := range s.h.ev.Bookings() {
			out = append(out, fmt.Sprintf("%s %s %s [%s] total=%d at=%s", b.ID, b.ReservationID, b.CustomerID,
				strings.Join(b.Seats, " "), b.TotalCents, rel(b.BookedAt.UnixMilli())))
		}
		if out == nil {
			out = []string{"no bookings"}
		}
		return out
	case "check":
		s.h.checkReplay()
		if got := restoreOf(scriptTB{}, s.h).MarshalSnapshot(); !bytes.Equal(got, s.h.ev.MarshalSnapshot()) {
			return []string{"FAILED: snapshot does not round-trip"}
		}
		return []string{fmt.Sprintf("ok: %d records replay to the same state", len(s.h.recs))}
	}
	panic(scriptFailure{"unknown command " + fields[0]})
}

// focal parses "X,Y" (split already).
func focal(xy []string) *FocalPoint {
	if len(xy) != 2 {
		panic(scriptFailure{"focal needs X,Y"})
	}
	var v [2]float64
	for i := range v {
		f, err := strconv.ParseFloat(xy[i], 64)
		if err != nil {
			panic(scriptFailure{fmt.Sprintf("focal %q: %v", xy[i], err)})
		}
		v[i] = f
	}
	return &FocalPoint{X: v[0], Y: v[1]}
}

// rel renders a Unix-millisecond time as seconds after t0.
func rel(ms int64) string {
	d := ms - t0.UnixMilli()
	return strconv.FormatFloat(float64(d)/1000, 'f', -1, 64)
}

func (s *script) result(recs []Record, err error) []string {
	var out []string
	plan := s.h.ev.Plan()
	for _, r := range recs {
		var b strings.Builder
		fmt.Fprintf(&b, "%d %s", r.Seq, r.Type)
		if r.ReservationID != "" {
			fmt.Fprintf(&b, " %s %s", r.ReservationID, r.CustomerID)
		}
		if len(r.Seats) > 0 {
			names := make([]string, len(r.Seats))
			for i, x := range r.Seats {
				names[i] = plan.Seats[x].ID
			}
			fmt.Fprintf(&b, " [%s]", strings.Join(names, " "))
		}
		switch r.Type {
		case RecordSeatsHeld:
			fmt.Fprintf(&b, " expires=%s", rel(r.ExpiresAtUnixMilli))
			if r.HoldStartUnixMilli != 0 {
				fmt.Fprintf(&b, " held-since=%s", rel(r.HoldStartUnixMilli))
			}
		case RecordEventUpdated:
			fmt.Fprintf(&b, " %s", r.Definition)
		case RecordHoldReleased:
			fmt.Fprintf(&b, " %s", r.Reason)
		case RecordPaymentStarted:
			fmt.Fprintf(&b, " attempt=%d grace-until=%s", r.Attempt, rel(r.ExpiresAtUnixMilli))
		case RecordPaymentFailed, RecordPaymentVoided, RecordRefundRequested, RecordPaymentRefunded:
			fmt.Fprintf(&b, " attempt=%d", r.Attempt)
		case RecordSeatsBooked:
			fmt.Fprintf(&b, " attempt=%d booking=%s", r.Attempt, r.BookingID)
		}
		out = append(out, b.String())
	}
	if err == nil {
		return append(out, "ok")
	}
	line := "error " + string(CodeOf(err))
	if e, ok := err.(*Error); ok && len(e.Seats) > 0 {
		line += " " + strings.Join(e.Seats, " ")
	}
	return append(out, line)
}
