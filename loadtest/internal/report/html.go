package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"

	"github.com/tsenart/vegeta/v12/lib/plot"
)

//go:embed report.html.tmpl
var htmlTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{"ms": FormatMs, "percent": func(f float64) float64 { return 100 * f }}).Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained page: the tables of
// the terminal report and two plots (latency and throughput over time)
// drawn by uPlot, the plotting library that vegeta's own plot embeds. The
// library is inlined from vegeta's embedded assets, so the page needs no
// network to open.
func (s *Summary) WriteHTML(w io.Writer) error {
	js, err := readAsset("uPlot.min.js")
	if err != nil {
		return err
	}
	css, err := readAsset("uPlot.min.css")
	if err != nil {
		return err
	}
	return page.Execute(w, struct {
		*Summary
		UPlotJS  template.JS
		UPlotCSS template.CSS
		Warnings []string
	}{s, template.JS(js), template.CSS(css), s.Warnings()})
}

func readAsset(name string) ([]byte, error) {
	f, err := plot.Assets.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening vegeta's plot asset %s: %w", name, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}
