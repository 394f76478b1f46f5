package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Step is one measured step of a scenario: one --json line.
type Step struct {
	Scenario             string  `json:"scenario"`
	Target               string  `json:"target"`
	Run                  int     `json:"run"`
	Step                 string  `json:"step"` // idle, fixed-rate, search, replay, mass-resume, baseline, attack, scale-out; or resume, storm, scale-out (n/a)
	Rate                 float64 `json:"rate,omitempty"`
	Connections          int     `json:"connections"`
	Rooms                int     `json:"rooms"`
	Expected             int64   `json:"deliveries_expected"`
	Delivered            int64   `json:"delivered"`
	Lost                 int64   `json:"lost"`
	P50                  float64 `json:"p50_ms,omitempty"` // load steps only
	P99                  float64 `json:"p99_ms,omitempty"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery,omitempty"`
	RSSBytesPerConn      float64 `json:"rss_bytes_per_conn,omitempty"`
	EventsPerSec         float64 `json:"events_per_second,omitempty"`
	Seconds              float64 `json:"seconds,omitempty"`
	ReconnectsPeak       float64 `json:"reconnects_per_second_peak,omitempty"`    // scale-out only
	ReconnectsAverage    float64 `json:"reconnects_per_second_average,omitempty"` // scale-out only
	Passed               bool    `json:"passed"`
	Problem              string  `json:"problem,omitempty"`
}

// Which way a figure improves.
const (
	lower  = "lower"
	higher = "higher"
)

// figureSpec names a figure.
type figureSpec struct {
	name, unit, better string
}

// Figure is one measured quantity of a scenario on each target: the
// summary's rows.
type Figure struct {
	Name    string             `json:"figure"`
	Unit    string             `json:"unit"`
	Better  string             `json:"better"` // lower or higher
	Targets map[string]*Result `json:"targets"`
	// Ratio is the roomcast median over the reference's, measured in the
	// same invocation; nil when either is missing.
	Ratio *float64 `json:"ratio"`
	// ToFloor is each other target's median over the floor's, measured in
	// the same invocation: how far from the machine's limit it is.
	ToFloor map[string]float64 `json:"ratio_to_floor,omitempty"`
}

// Result is one figure on one target.
type Result struct {
	Median *float64  `json:"median"` // nil: no run measured it
	Runs   []float64 `json:"runs"`   // the measured runs' values
	Failed int       `json:"failed_runs,omitempty"`
	AtMax  int       `json:"runs_at_max_rate,omitempty"` // searches that never failed: the figure is a lower bound
	NA     string    `json:"na,omitempty"`               // why the target has no such figure
}

// Summary is the outcome of a scenario: the last --json line.
type Summary struct {
	Summary  bool     `json:"summary"` // always true: tells this line from the steps
	Scenario string   `json:"scenario"`
	Runs     int      `json:"runs"`
	Targets  []string `json:"targets"`
	// ServerCores and ClientCores are the CPU lists each side was pinned
	// to (the servers; the bench's load generator and publisher), "" when
	// not pinned.
	ServerCores string    `json:"server_cores"`
	ClientCores string    `json:"client_cores"`
	Figures     []*Figure `json:"figures"`
}

// figures collects the values of each figure by target, in the order
// figures first appear.
type figures struct {
	list []*Figure
}

func (f *figures) get(spec figureSpec) *Figure {
	for _, g := range f.list {
		if g.Name == spec.name {
			return g
		}
	}
	g := &Figure{Name: spec.name, Unit: spec.unit, Better: spec.better, Targets: map[string]*Result{}}
	f.list = append(f.list, g)
	return g
}

func (f *figures) result(spec figureSpec, target string) *Result {
	g := f.get(spec)
	r := g.Targets[target]
	if r == nil {
		r = &Result{Runs: []float64{}}
		g.Targets[target] = r
	}
	return r
}

// add records one run's value; ok false counts a run that failed to
// measure it.
func (f *figures) add(spec figureSpec, target string, v float64, ok bool) {
	r := f.result(spec, target)
	if !ok {
		r.Failed++
		return
	}
	r.Runs = append(r.Runs, v)
}

// na marks a figure the target cannot have.
func (f *figures) na(spec figureSpec, target, why string) {
	f.result(spec, target).NA = why
}

func (f *figures) summary(cfg *ScenarioConfig) *Summary {
	for _, g := range f.list {
		for _, r := range g.Targets {
			if len(r.Runs) > 0 {
				m := median(r.Runs)
				r.Median = &m
			}
		}
		if ratio, ok := g.ratio(TargetRoomcast, TargetNATS); ok {
			g.Ratio = &ratio
		}
		for t := range g.Targets {
			if ratio, ok := g.ratio(t, TargetFloor); ok && t != TargetFloor {
				if g.ToFloor == nil {
					g.ToFloor = map[string]float64{}
				}
				g.ToFloor[t] = ratio
			}
		}
	}
	return &Summary{Summary: true, Scenario: cfg.Scenario, Runs: cfg.Runs, Targets: cfg.Targets,
		ServerCores: FormatCPUList(cfg.Cores.Servers), ClientCores: FormatCPUList(cfg.Cores.Clients), Figures: f.list}
}

// ratio is target a's median over b's, when both have one (b's not 0).
func (g *Figure) ratio(a, b string) (float64, bool) {
	ra, rb := g.Targets[a], g.Targets[b]
	if ra == nil || rb == nil || ra.Median == nil || rb.Median == nil || *rb.Median == 0 {
		return 0, false
	}
	return *ra.Median / *rb.Median, true
}

// median of a non-empty list.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// WriteTable prints the cores of each side, then the summary as a table:
// one row per figure and target, the ratio on the roomcast row, and with
// the floor measured each other target's ratio to it on its row.
func (s *Summary) WriteTable(w io.Writer) error {
	cores := Cores{Servers: parseCPUListOrNone(s.ServerCores), Clients: parseCPUListOrNone(s.ClientCores)}
	if _, err := fmt.Fprintf(w, "cores: %s\n", cores); err != nil {
		return err
	}
	floor := slices.Contains(s.Targets, TargetFloor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SCENARIO\tFIGURE\tTARGET\tMEDIAN\tRUNS\tRATIO roomcast/nats"
	if floor {
		header += "\tRATIO to floor"
	}
	fmt.Fprintln(tw, header)
	for _, g := range s.Figures {
		for _, t := range s.Targets {
			r := g.Targets[t]
			if r == nil {
				continue
			}
			median, runs := "n/a", r.NA
			if r.NA == "" {
				median = "failed"
				if r.Median != nil {
					median = formatValue(*r.Median) + " " + g.Unit
				}
				runs = formatRuns(r)
			}
			ratio := ""
			if t == TargetRoomcast && slices.Contains(s.Targets, TargetNATS) {
				ratio = "n/a"
				if g.Ratio != nil {
					ratio = fmt.Sprintf("%.2f (%s is better)", *g.Ratio, g.Better)
				}
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", s.Scenario, g.Name, t, median, runs, ratio)
			if floor && t != TargetFloor {
				toFloor := "n/a"
				if v, ok := g.ToFloor[t]; ok {
					toFloor = fmt.Sprintf("%.2f", v)
				}
				line += "\t" + toFloor
			}
			fmt.Fprintln(tw, line)
		}
	}
	return tw.Flush()
}

// parseCPUListOrNone reads a CPU list the summary wrote; "" is none.
func parseCPUListOrNone(s string) []int {
	if s == "" {
		return nil
	}
	cpus, _ := ParseCPUList(s)
	return cpus
}

func formatRuns(r *Result) string {
	parts := make([]string, 0, len(r.Runs)+1)
	for _, v := range r.Runs {
		parts = append(parts, formatValue(v))
	}
	if r.Failed > 0 {
		parts = append(parts, strconv.Itoa(r.Failed)+" failed")
	}
	if r.AtMax > 0 {
		parts = append(parts, strconv.Itoa(r.AtMax)+" at --max-rate")
	}
	return strings.Join(parts, ", ")
}

// formatValue prints 3 significant digits, as integers from 100 up.
func formatValue(v float64) string {
	if v >= 100 || v <= -100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
