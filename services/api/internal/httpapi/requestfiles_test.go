package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

// repoRoot is where the editor files live, seen from this package.
const repoRoot = "../../../../"

// TestRequestFiles: the editor files of the two HTTP clients send the same
// requests, each one an operation of the contract, and both clients get
// the same environments.
func TestRequestFiles(t *testing.T) {
	ct := loadContract(t)
	requestLine := regexp.MustCompile(`(?m)^(GET|POST|PUT|PATCH|DELETE) \{\{host\}\}(\S*)$`)
	variable := regexp.MustCompile(`\{\{[^}]+\}\}`)
	var lists [][]string
	for _, name := range []string{"requests.http", "requests.jetbrains.http"} {
		b, err := os.ReadFile(repoRoot + name)
		if err != nil {
			t.Fatal(err)
		}
		var list []string
		for _, m := range requestLine.FindAllStringSubmatch(string(b), -1) {
			method, path := m[1], variable.ReplaceAllString(m[2], "x")
			list = append(list, method+" "+path)
			route, _, err := ct.router.FindRoute(httptest.NewRequest(method, ct.base+path, nil))
			if err != nil || !templateMatches(route.Path, path) {
				t.Errorf("%s: %s %s is no operation of openapi.yaml", name, method, m[2])
			}
		}
		if len(list) == 0 {
			t.Fatalf("%s: no requests found", name)
		}
		lists = append(lists, list)
	}
	if !slices.Equal(lists[0], lists[1]) {
		t.Errorf("requests: requests.http has %q, requests.jetbrains.http %q", lists[0], lists[1])
	}

	var jetbrains map[string]map[string]string
	var vscode struct {
		Envs map[string]map[string]string `json:"rest-client.environmentVariables"`
	}
	for path, v := range map[string]any{"http-client.env.json": &jetbrains, ".vscode/settings.json": &vscode} {
		b, err := os.ReadFile(repoRoot + path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(jetbrains) == 0 || !reflect.DeepEqual(jetbrains, vscode.Envs) {
		t.Errorf("environments: http-client.env.json has %v, .vscode/settings.json %v", jetbrains, vscode.Envs)
	}
}
