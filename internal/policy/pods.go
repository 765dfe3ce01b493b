package policy

import (
	"encoding/json"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/flowscope/flowscope/internal/specfile"
)

// PodNamedPorts returns a pod's named TCP container ports (init containers included: a
// sidecar declared as a restartable init container serves too).
func PodNamedPorts(p *corev1.Pod) map[string]int32 {
	out := map[string]int32{}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.Name != "" && (port.Protocol == "" || port.Protocol == corev1.ProtocolTCP) {
					out[port.Name] = port.ContainerPort
				}
			}
		}
	}
	return out
}

// ParsePodPorts reads the named container ports of the pods in a YAML file (kubectl get pods
// -A -o yaml: documents of kind Pod, PodList or List), keyed by PodKey. Errors name the file,
// line and column.
func ParsePodPorts(file string, data []byte) (map[string]map[string]int32, error) {
	docs, err := specfile.Documents(file, data)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int32{}
	var add func(n *yaml.Node) error
	add = func(n *yaml.Node) error {
		if n.Kind != yaml.MappingNode {
			return specfile.At(file, n, "expected a Pod or a List of them")
		}
		switch kind := valueOf(n, "kind"); kind {
		case "List", "PodList":
			items := valueNode(n, "items")
			if items == nil || items.Kind != yaml.SequenceNode {
				return specfile.At(file, n, "%s needs a list of items", kind)
			}
			for _, it := range items.Content {
				if err := add(it); err != nil {
					return err
				}
			}
			return nil
		case "Pod":
		default:
			return specfile.At(file, n, "kind %q: want Pod, PodList or List", kind)
		}
		var generic any
		if err := n.Decode(&generic); err != nil {
			return specfile.At(file, n, "%v", err)
		}
		b, err := json.Marshal(generic)
		if err != nil {
			return specfile.At(file, n, "%v", err)
		}
		var p corev1.Pod
		if err := json.Unmarshal(b, &p); err != nil {
			return specfile.At(file, n, "not a Pod: %v", err)
		}
		if p.Name == "" {
			return specfile.At(file, n, "a Pod needs metadata.name")
		}
		if p.Namespace == "" {
			p.Namespace = "default"
		}
		if ports := PodNamedPorts(&p); len(ports) > 0 {
			out[PodKey(p.Namespace, p.Name)] = ports
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
