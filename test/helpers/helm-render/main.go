// Command helm-render renders a Helm chart the way `helm template` does, for machines where the
// helm binary cannot be installed. It is a test helper, not a Helm replacement: it implements
// the parts of Helm that the snapworker chart uses and nothing more.
//
// Supported: Go text/template with sprig (minus `env`/`expandenv`, as in Helm), Helm's own
// functions `include`, `tpl`, `required`, `fail`, `toYaml`, `fromYaml`, `toJson`, `fromJson`;
// the objects `.Values` (values.yaml deep-merged with every -f file, null deleting a key, numbers
// as float64 like Helm), `.Release`, `.Chart`, `.Capabilities` (a fixed Kubernetes
// version and the API versions given with -a), `.Template` and `.Files.Get`/`.Files.GetBytes`.
// Not supported: `lookup`, subcharts, `--set`, hooks.
//
// Usage:
//
//	helm-render [-n namespace] [--name release] [-f values.yaml]... [-a group/version]...
//	            [--values-out merged.json] [--notes-out notes.txt] <chart-dir>
//
// The manifests go to stdout as one multi-document YAML stream, each document preceded by a
// `# Source:` comment, in template-name order, empty documents skipped. On any template error
// (including `required` and `fail`) it writes the error to stderr and exits with status 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var valueFiles, apiVersions stringList
	namespace := flag.String("n", "default", "release namespace")
	releaseName := flag.String("name", "release-name", "release name")
	valuesOut := flag.String("values-out", "", "write the merged values as JSON to this file")
	notesOut := flag.String("notes-out", "", "render templates/NOTES.txt into this file")
	flag.Var(&valueFiles, "f", "values file (repeatable, later wins)")
	flag.Var(&apiVersions, "a", "API version the cluster offers, for .Capabilities.APIVersions.Has (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [flags] <chart-dir>")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *releaseName, *namespace, valueFiles, apiVersions, *valuesOut, *notesOut); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(chartDir, releaseName, namespace string, valueFiles, apiVersions []string, valuesOut, notesOut string) error {
	chartMeta, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	chartName, _ := chartMeta["name"].(string)
	if chartName == "" {
		return fmt.Errorf("chart %s: Chart.yaml has no name", chartDir)
	}
	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, file := range valueFiles {
		override, err := readYAMLMap(file)
		if err != nil {
			return err
		}
		values = mergeValues(values, override)
	}
	if valuesOut != "" {
		encoded, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return fmt.Errorf("encode merged values: %w", err)
		}
		if err := os.WriteFile(valuesOut, encoded, 0o644); err != nil {
			return fmt.Errorf("write merged values %s: %w", valuesOut, err)
		}
	}

	files, err := loadFiles(chartDir)
	if err != nil {
		return err
	}
	templates, err := loadTemplates(chartDir, chartName)
	if err != nil {
		return err
	}
	root := template.New("gotpl")
	// Helm renders missing keys as empty (and strips "<no value>"), unless linting strictly.
	root.Option("missingkey=zero")
	root.Funcs(funcMap(root))
	names := make([]string, 0, len(templates))
	for name, text := range templates {
		if _, err := root.New(name).Parse(text); err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		names = append(names, name)
	}
	sort.Strings(names)

	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": releaseName, "Namespace": namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart":        chartObject(chartMeta),
		"Capabilities": capabilities(apiVersions),
		"Files":        files,
	}

	var out bytes.Buffer
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		rendered, err := execute(root, name, chartName, top)
		if err != nil {
			return err
		}
		if strings.TrimSpace(rendered) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimRight(rendered, "\n"))
	}
	if notesOut != "" {
		notesName := chartName + "/templates/NOTES.txt"
		if _, ok := templates[notesName]; !ok {
			return fmt.Errorf("chart %s has no templates/NOTES.txt", chartDir)
		}
		notes, err := execute(root, notesName, chartName, top)
		if err != nil {
			return err
		}
		if err := os.WriteFile(notesOut, []byte(notes), 0o644); err != nil {
			return fmt.Errorf("write notes %s: %w", notesOut, err)
		}
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

// execute renders one template with `.Template` set for it, as Helm does per file.
func execute(root *template.Template, name, chartName string, top map[string]interface{}) (string, error) {
	data := make(map[string]interface{}, len(top)+1)
	for k, v := range top {
		data[k] = v
	}
	data["Template"] = map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"}
	var buf bytes.Buffer
	if err := root.ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func funcMap(root *template.Template) template.FuncMap {
	funcs := sprig.TxtFuncMap()
	// Helm removes these two so charts cannot read the environment of the machine rendering them.
	delete(funcs, "env")
	delete(funcs, "expandenv")

	funcs["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(text string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["fromJson"] = func(text string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["required"] = func(message string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(message)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(message)
		}
		return v, nil
	}
	funcs["fail"] = func(message string) (string, error) { return "", errors.New(message) }
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: parse: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		// Like `helm template`: no cluster, so nothing is found.
		return map[string]interface{}{}, nil
	}
	return funcs
}

// readYAMLMap reads a YAML mapping. Numbers become float64, as in Helm's values loader (which is
// why charts print numbers through `int`: 1000000 would otherwise render as 1e+06).
func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// mergeValues returns base overlaid with override: maps merge deeply, anything else is replaced,
// and an explicit null removes the key (Helm's way to unset a chart default).
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		baseMap, baseIsMap := out[k].(map[string]interface{})
		overrideMap, overrideIsMap := v.(map[string]interface{})
		if baseIsMap && overrideIsMap {
			out[k] = mergeValues(baseMap, overrideMap)
		} else {
			out[k] = v
		}
	}
	return out
}

// chartFiles is `.Files`: every file of the chart outside templates/ (Helm also honours
// .helmignore; this chart's ignore list only keeps development files out of the package).
type chartFiles map[string][]byte

func (f chartFiles) Get(name string) string      { return string(f[name]) }
func (f chartFiles) GetBytes(name string) []byte { return f[name] }

func loadFiles(chartDir string) (chartFiles, error) {
	files := chartFiles{}
	err := filepath.WalkDir(chartDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "templates" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[rel] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read chart files of %s: %w", chartDir, err)
	}
	return files, nil
}

func loadTemplates(chartDir, chartName string) (map[string]string, error) {
	templates := map[string]string{}
	dir := filepath.Join(chartDir, "templates")
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		templates[chartName+"/templates/"+filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read templates of %s: %w", chartDir, err)
	}
	return templates, nil
}

// chartObject maps Chart.yaml's keys to the capitalised fields Helm exposes (.Chart.AppVersion).
func chartObject(meta map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range meta {
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	if _, ok := out["AppVersion"]; !ok {
		out["AppVersion"] = ""
	}
	return out
}

type apiVersionSet []string

// Has reports whether the cluster offers an API version ("keda.sh/v1alpha1") or a
// version/kind ("keda.sh/v1alpha1/ScaledObject"), like Helm's VersionSet.Has.
func (s apiVersionSet) Has(version string) bool {
	for _, v := range s {
		if v == version {
			return true
		}
	}
	return false
}

func capabilities(extra []string) map[string]interface{} {
	versions := apiVersionSet{"v1", "apps/v1", "policy/v1", "autoscaling/v2", "batch/v1", "networking.k8s.io/v1"}
	versions = append(versions, extra...)
	return map[string]interface{}{
		"KubeVersion": map[string]interface{}{
			"Version": "v1.30.0", "GitVersion": "v1.30.0", "Major": "1", "Minor": "30",
		},
		"APIVersions": versions,
		"HelmVersion": map[string]interface{}{"Version": "v3.16.0"},
	}
}
