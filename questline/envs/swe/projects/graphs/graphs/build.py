"""Building adjacency-list graphs: nodes map to sorted lists of their neighbours."""

Graph = dict[str, list[str]]


def add_node(graph: Graph, node: str) -> None:
    """Add node without any edges unless it is already in the graph."""
    graph.setdefault(node, [])


def add_edge(graph: Graph, source: str, target: str, directed: bool = False) -> None:
    """Add an edge (in both directions unless directed), keeping neighbour lists sorted."""
    if source == target and not directed:
        raise ValueError(f"self-loop on {source!r} in an undirected graph")
    add_node(graph, source)
    add_node(graph, target)
    if target not in graph[source]:
        graph[source].append(target)
        graph[source].sort()
    if not directed and source not in graph[target]:
        graph[target].append(source)
        graph[target].sort()


def from_edges(
    edges: list[tuple[str, str]], directed: bool = False, nodes: tuple[str, ...] = ()
) -> Graph:
    """Build a graph from (source, target) pairs, plus optional isolated nodes."""
    graph: Graph = {}
    for node in nodes:
        add_node(graph, node)
    for source, target in edges:
        add_edge(graph, source, target, directed)
    return graph


def parse_edges(text: str) -> list[tuple[str, str]]:
    """Parse "a-b, b-c" into [("a", "b"), ("b", "c")]; empty items are skipped."""
    edges = []
    for item in text.split(","):
        if not item.strip():
            continue
        parts = [part.strip() for part in item.split("-")]
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"bad edge: {item.strip()!r}")
        edges.append((parts[0], parts[1]))
    return edges


def edge_list(graph: Graph, directed: bool = False) -> list[tuple[str, str]]:
    """Return the sorted edges; an undirected edge is listed once, as (smaller, larger)."""
    pairs = []
    for source in sorted(graph):
        for target in graph[source]:
            if directed or source < target:
                pairs.append((source, target))
    return pairs


def degree(graph: Graph, node: str) -> int:
    """Return the number of neighbours (out-degree for a directed graph)."""
    if node not in graph:
        raise ValueError(f"unknown node {node!r}")
    return len(graph[node])
