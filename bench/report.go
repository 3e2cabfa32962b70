package bench

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the report writers every benchmark shares (proxy today;
// cold start and cache later): a Table rendered as aligned text or markdown,
// and a BarChart rendered as a self-contained SVG.

// Align is the horizontal alignment of a table column.
type Align uint8

// Column alignments.
const (
	AlignLeft Align = iota
	AlignRight
)

// Table is a grid of text cells with a header row. Rows may be shorter than
// Columns (missing cells are empty); cells beyond Columns are dropped.
type Table struct {
	Columns []string
	// Align gives each column's alignment; missing entries are AlignLeft.
	Align []Align
	Rows  [][]string
}

func (t *Table) align(i int) Align {
	if i < len(t.Align) {
		return t.Align[i]
	}
	return AlignLeft
}

func (t *Table) cell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

// WriteText writes the table as space-aligned columns for a terminal.
func (t *Table) WriteText(w io.Writer) error {
	width := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		width[i] = utf8.RuneCountInString(c)
	}
	for _, r := range t.Rows {
		for i := range t.Columns {
			width[i] = max(width[i], utf8.RuneCountInString(t.cell(r, i)))
		}
	}
	bw := bufio.NewWriter(w)
	var lb strings.Builder
	line := func(cells func(i int) string) {
		lb.Reset()
		for i := range t.Columns {
			s := cells(i)
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if i > 0 {
				lb.WriteString("   ")
			}
			if t.align(i) == AlignRight {
				lb.WriteString(pad + s)
			} else {
				lb.WriteString(s + pad)
			}
		}
		bw.WriteString(strings.TrimRight(lb.String(), " ")) // no trailing blanks
		bw.WriteByte('\n')
	}
	line(func(i int) string { return t.Columns[i] })
	for _, r := range t.Rows {
		line(func(i int) string { return t.cell(r, i) })
	}
	return bw.Flush()
}

// WriteMarkdown writes the table as a GitHub-flavoured markdown table. Pipes
// in cells are escaped and newlines folded, so any text is safe.
func (t *Table) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	esc := strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ")
	row := func(cells func(i int) string) {
		bw.WriteString("|")
		for i := range t.Columns {
			bw.WriteString(" " + esc.Replace(cells(i)) + " |")
		}
		bw.WriteByte('\n')
	}
	row(func(i int) string { return t.Columns[i] })
	bw.WriteString("|")
	for i := range t.Columns {
		if t.align(i) == AlignRight {
			bw.WriteString("---:|")
		} else {
			bw.WriteString("---|")
		}
	}
	bw.WriteByte('\n')
	for _, r := range t.Rows {
		row(func(i int) string { return t.cell(r, i) })
	}
	return bw.Flush()
}

// BarChart is a chart of one panel per series, each with one horizontal bar
// per group. Panels have their own scale, so series of different units
// (requests/s and CPU-µs per request) sit in one picture without one dwarfing
// the other.
type BarChart struct {
	Title  string
	Groups []string // bar labels, the same in every panel
	Series []Series
}

// Series is one panel of a BarChart.
type Series struct {
	Name string
	// Values has one value per group; a missing, negative, NaN or infinite
	// value draws no bar and the label "n/a".
	Values []float64
	// Format renders a value next to its bar; nil uses FormatNumber.
	Format func(float64) string
}

// SVG layout, in pixels.
const (
	svgWidth    = 720
	svgMargin   = 16
	svgLabelW   = 120
	svgBarMaxW  = 440
	svgBarH     = 20
	svgBarGap   = 6
	svgTitleH   = 30
	svgPanelH   = 24 // a panel's heading
	svgPanelGap = 14
)

// svgPalette colours bars by group, so a group has one colour in every panel.
var svgPalette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"}

// WriteSVG writes the chart as a standalone SVG document.
func (c *BarChart) WriteSVG(w io.Writer) error {
	height := svgMargin + svgTitleH
	for range c.Series {
		height += svgPanelH + len(c.Groups)*(svgBarH+svgBarGap) + svgPanelGap
	}
	height += svgMargin - svgPanelGap
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	fmt.Fprintf(bw, `<text x="%d" y="%d" font-size="16" font-weight="bold">%s</text>`+"\n",
		svgMargin, svgMargin+16, xmlText(c.Title))
	y := svgMargin + svgTitleH
	for _, s := range c.Series {
		format := s.Format
		if format == nil {
			format = FormatNumber
		}
		fmt.Fprintf(bw, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", svgMargin, y+15, xmlText(s.Name))
		y += svgPanelH
		top := 0.0
		for _, v := range s.Values {
			if drawable(v) {
				top = max(top, v)
			}
		}
		for g, label := range c.Groups {
			v := math.NaN()
			if g < len(s.Values) {
				v = s.Values[g]
			}
			x := svgMargin + svgLabelW
			fmt.Fprintf(bw, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x-8, y+svgBarH-6, xmlText(label))
			text := "n/a"
			barW := 0
			if drawable(v) {
				text = format(v)
				if top > 0 {
					barW = int(math.Round(v / top * svgBarMaxW))
				}
				fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n",
					x, y, barW, svgBarH, svgPalette[g%len(svgPalette)])
			}
			fmt.Fprintf(bw, `<text x="%d" y="%d">%s</text>`+"\n", x+barW+6, y+svgBarH-6, xmlText(text))
			y += svgBarH + svgBarGap
		}
		y += svgPanelGap
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

func drawable(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails
	return b.String()
}

// FormatNumber renders v with thousands separators when large and two
// decimals when small: "123,456", "12.34".
func FormatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// FormatMicros renders a duration given in microseconds with a unit that
// keeps three significant digits: "87µs", "1.23ms", "2.50s".
func FormatMicros(us float64) string {
	switch {
	case math.IsNaN(us) || math.IsInf(us, 0):
		return "n/a"
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
	case us < 1e6:
		return strconv.FormatFloat(us/1e3, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(us/1e6, 'f', 2, 64) + "s"
	}
}

// FormatRatio renders a ratio as "0.87x", or "n/a" when undefined.
func FormatRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

// rawDataNote is the markdown sentence after a report's "Raw …:" link to
// NAME-latest.json, naming the timestamped copy the run also wrote
// (stampedJSON, a base name). The copy is named, never linked: .gitignore
// keeps everything in bench/results/ but the *-latest.* files out of the
// repository, so a link to it would be dead in every clone.
func rawDataNote(stampedJSON string) string {
	return fmt.Sprintf("The run also wrote a timestamped copy of the JSON, `%s`, which stays local: only the `*-latest.*` files of bench/results/ are committed.", stampedJSON)
}

// loadChart is the SVG every load study draws: requests/s and CPU-µs per
// request for each of its rows (targets or routes), under a title naming
// the study and its wrk runs. cpuName labels the CPU series; row gives a
// row's name and its two values.
func loadChart[S any](study string, runs, threads, connections int, duration, cpuName string,
	rows []S, row func(S) (name string, rps, cpu float64)) *BarChart {
	c := &BarChart{Title: fmt.Sprintf("%s: medians of %d runs, wrk -t%d -c%d -d%s on loopback",
		study, runs, threads, connections, duration)}
	rps := Series{Name: "requests/s (higher is better)"}
	cpu := Series{Name: cpuName}
	for _, s := range rows {
		name, r, u := row(s)
		c.Groups = append(c.Groups, name)
		rps.Values = append(rps.Values, r)
		cpu.Values = append(cpu.Values, u)
	}
	c.Series = []Series{rps, cpu}
	return c
}
