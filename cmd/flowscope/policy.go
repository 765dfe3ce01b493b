package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/flowscope/flowscope/internal/api"
	"github.com/flowscope/flowscope/internal/policy"
	"github.com/flowscope/flowscope/internal/specfile"
)

func init() {
	register("policy", "segmentation: policy audit | recommend | whatif", runPolicy)
}

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func runPolicy(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("usage: flowscope policy audit|recommend|whatif [flags]")}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("policy " + sub)
	var q queryFlags
	var files fileList
	var allow, nsFile, podsFile string
	var kube kubeFlags
	switch sub {
	case "audit":
		q.register(fs, "table or json")
		fs.Var(&files, "f", "NetworkPolicy YAML file (repeatable; - for stdin, e.g. kubectl get networkpolicy -A -o yaml)")
		fs.StringVar(&allow, "allow", "", "allow-list YAML file")
		fs.StringVar(&nsFile, "namespace-labels", "", "YAML of Namespaces (kubectl get ns -o yaml) for namespaceSelectors")
		fs.StringVar(&podsFile, "pods", "", "YAML of Pods (kubectl get pods -A -o yaml) whose container ports resolve named ports")
		kube.register(fs, "audit the cluster's NetworkPolicies too, with its namespace labels and pods' named ports, read from the Kubernetes API")
	case "whatif":
		q.register(fs, "table or json")
		fs.Var(&files, "f", "proposed NetworkPolicy YAML file (repeatable; - for stdin)")
		fs.StringVar(&nsFile, "namespace-labels", "", "YAML of Namespaces (kubectl get ns -o yaml) for namespaceSelectors")
		fs.StringVar(&podsFile, "pods", "", "YAML of Pods (kubectl get pods -A -o yaml) whose container ports resolve named ports")
		kube.register(fs, "apply the proposal on top of the cluster's NetworkPolicies (read from the Kubernetes API, with namespace labels and pods' named ports) and report only what it newly blocks")
	case "recommend":
		q.register(fs, "yaml or json")
		q.output = "yaml"
		fs.Lookup("o").DefValue = "yaml"
	default:
		return usageError{fmt.Errorf("unknown policy subcommand %q: want audit, recommend or whatif", sub)}
	}
	if sub == "recommend" {
		if err := fs.Set("o", "yaml"); err != nil {
			return err
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if sub == "recommend" {
		return policyRecommend(ctx, &q)
	}
	if err := q.checkOutput("table", "json"); err != nil {
		return err
	}
	req, err := policyRequest(files, allow, nsFile, podsFile)
	if err != nil {
		return err
	}
	if kube.fromCluster {
		if err := kube.fill(ctx, &req, sub == "whatif"); err != nil {
			return err
		}
	}
	if sub == "audit" {
		if req.Allow == nil && len(req.Policies) == 0 {
			return usageError{errors.New("audit needs --allow FILE, -f POLICIES, --from-cluster (with NetworkPolicies in it) or a combination")}
		}
		var res api.AuditResult
		raw, err := q.call(ctx, "POST", "/api/v1/policy/audit", q.values(), req, &res)
		if err != nil {
			return err
		}
		if q.output == "json" {
			return printRaw(raw)
		}
		return printViolations(res.Violations, res.Total, "no observed flow violates the allow-list or the policies")
	}
	if len(req.Policies) == 0 {
		return usageError{errors.New("whatif needs -f POLICY.yaml")}
	}
	var res api.WhatIfResult
	raw, err := q.call(ctx, "POST", "/api/v1/policy/whatif", q.values(), req, &res)
	if err != nil {
		return err
	}
	if q.output == "json" {
		return printRaw(raw)
	}
	if err := printViolations(res.Blocked, res.Total, "the proposed policies block no observed flow"); err != nil {
		return err
	}
	_, err = fmt.Fprintf(queryOut, "\n%d observed flows would still be allowed.\n", res.AllowedFlows)
	if err == nil && kube.fromCluster {
		_, err = fmt.Fprintf(queryOut, "%d observed flows are already blocked by the cluster's current policies.\n", res.AlreadyBlockedFlows)
	}
	return err
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

func policyRequest(files []string, allow, nsFile, podsFile string) (policy.Request, error) {
	var req policy.Request
	for _, f := range files {
		data, err := readInput(f)
		if err != nil {
			return req, fmt.Errorf("reading policies: %w", err)
		}
		ps, err := policy.ParsePolicies(f, data)
		if err != nil {
			return req, err
		}
		req.Policies = append(req.Policies, ps...)
	}
	if allow != "" {
		data, err := readInput(allow)
		if err != nil {
			return req, fmt.Errorf("reading allow-list: %w", err)
		}
		al, err := policy.ParseAllowList(allow, data)
		if err != nil {
			return req, err
		}
		req.Allow = &al
	}
	if podsFile != "" {
		data, err := readInput(podsFile)
		if err != nil {
			return req, fmt.Errorf("reading pods: %w", err)
		}
		if req.NamedPorts, err = policy.ParsePodPorts(podsFile, data); err != nil {
			return req, err
		}
	}
	if nsFile != "" {
		data, err := readInput(nsFile)
		if err != nil {
			return req, fmt.Errorf("reading namespaces: %w", err)
		}
		if req.Namespaces, err = parseNamespaces(nsFile, data); err != nil {
			return req, err
		}
	}
	return req, nil
}

// parseNamespaces reads Namespace objects (or a List of them) for their labels.
func parseNamespaces(file string, data []byte) ([]policy.Namespace, error) {
	docs, err := specfile.Documents(file, data)
	if err != nil {
		return nil, err
	}
	var out []policy.Namespace
	var add func(n *yaml.Node) error
	add = func(n *yaml.Node) error {
		var obj struct {
			Kind     string
			Metadata struct {
				Name   string
				Labels map[string]string
			}
			Items []yaml.Node
		}
		if err := n.Decode(&obj); err != nil {
			return specfile.At(file, n, "%v", err)
		}
		switch obj.Kind {
		case "List", "NamespaceList":
			for i := range obj.Items {
				if err := add(&obj.Items[i]); err != nil {
					return err
				}
			}
		case "Namespace":
			out = append(out, policy.Namespace{Name: obj.Metadata.Name, Labels: obj.Metadata.Labels})
		default:
			return specfile.At(file, n, "kind %q: want Namespace or List", obj.Kind)
		}
		return nil
	}
	for _, d := range docs {
		if err := add(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func printViolations(vs []policy.Violation, total int, none string) error {
	if len(vs) == 0 {
		_, err := fmt.Fprintln(queryOut, none)
		return err
	}
	defer func() {
		if total > len(vs) {
			fmt.Fprintf(queryOut, "(%d more not shown: raise --limit)\n", total-len(vs))
		}
	}()
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		client, server := v.Client.Name(), fmt.Sprintf("%s:%d", v.Server.Name(), v.Port)
		clientOutside := v.Client.Addr.IsValid() && v.Client.Kind != "pod"
		switch {
		case v.Addresses > 1 && clientOutside:
			client += fmt.Sprintf(" (%d addresses)", v.Addresses)
		case v.Addresses > 1:
			server += fmt.Sprintf(" (%d addresses)", v.Addresses)
		case clientOutside:
			client += " (" + v.Client.Addr.String() + ")"
		}
		rows = append(rows, []string{client, server, fmt.Sprint(v.Flows), human(v.Bytes), v.Rule, v.Reason})
	}
	return table([]string{"CLIENT", "SERVER", "FLOWS", "BYTES", "RULE", "REASON"}, rows)
}

func policyRecommend(ctx context.Context, q *queryFlags) error {
	if err := q.checkOutput("yaml", "json"); err != nil {
		return err
	}
	var res api.RecommendResult
	raw, err := q.call(ctx, "GET", "/api/v1/policy/recommend", q.values(), nil, &res)
	if err != nil {
		return err
	}
	if q.output == "json" {
		return printRaw(raw)
	}
	fmt.Fprintf(queryOut, "# Least-privilege NetworkPolicies from flows observed %s – %s (flowscope policy recommend).\n",
		res.From.Format("2006-01-02 15:04"), res.To.Format("2006-01-02 15:04"))
	for _, s := range res.Skipped {
		fmt.Fprintf(queryOut, "# skipped %s: its pods share no label to select them by\n", s)
	}
	for _, p := range res.Policies {
		b, err := sigsyaml.Marshal(p)
		if err != nil {
			return fmt.Errorf("encoding policy: %w", err)
		}
		fmt.Fprintf(queryOut, "---\n%s", b)
	}
	return nil
}

var _ flag.Value = (*fileList)(nil)
