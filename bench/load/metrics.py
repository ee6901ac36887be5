"""What the query service's own counters say happened during a profile: cache hits by layer,
LLM cost saved, degraded answers."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics_port: int, host: str = "127.0.0.1") -> Samples:
    url = f"http://{host}:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@dataclass(frozen=True)
class CacheFigures:
    queries: int
    exact_hits: int
    semantic_hits: int
    saved_usd: float
    degraded_answers: int

    @classmethod
    def between(cls, before: Samples, after: Samples) -> CacheFigures:
        def delta(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        lookups = "ragplane_query_cache_lookups_total"
        return cls(
            queries=int(delta(lookups, layer="exact")),
            exact_hits=int(delta(lookups, layer="exact", outcome="hit")),
            semantic_hits=int(delta(lookups, layer="semantic", outcome="hit")),
            saved_usd=delta("ragplane_query_cache_saved_usd_total"),
            # Stage GENERATION degradations: answers not written by an LLM for this query.
            degraded_answers=int(
                delta("ragplane_query_degradations_total", stage="STAGE_GENERATION")
            ),
        )

    def describe(self) -> str:
        if self.queries == 0:
            return "no answer cache lookups (caches off?)"
        exact = self.exact_hits / self.queries
        semantic = self.semantic_hits / self.queries
        return (
            f"answer cache hit rate: exact {exact:.0%}, semantic {semantic:.0%} "
            f"({self.exact_hits} + {self.semantic_hits} of {self.queries} queries, "
            f"{self.exact_hits + self.semantic_hits} LLM calls avoided, "
            f"${self.saved_usd:.6f} saved at the providers' configured prices); "
            f"{self.degraded_answers} extractive answers"
        )


@dataclass(frozen=True)
class VariantFigures:
    """One A/B variant's answers during a run (the query service's ragplane_query_variant_*)."""

    experiment: str
    variant: str
    answers: int
    cached: int
    degraded: int
    latency_sum_s: float
    cost_usd: float

    @classmethod
    def between(cls, before: Samples, after: Samples) -> list[VariantFigures]:
        """Every variant that answered between the two scrapes, in name order."""

        def delta(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        answers = "ragplane_query_variant_answers_total"
        variants = sorted(
            {
                (dict(labels)["experiment"], dict(labels)["variant"])
                for (name, labels) in after
                if name == answers and dict(labels).get("variant")
            }
        )
        figures = []
        for experiment, variant in variants:
            labels = {"experiment": experiment, "variant": variant}
            count = int(delta(answers, **labels))
            if count == 0:
                continue
            figures.append(
                cls(
                    experiment=experiment,
                    variant=variant,
                    answers=count,
                    cached=int(delta(answers, outcome="cached", **labels)),
                    degraded=int(delta(answers, outcome="degraded", **labels)),
                    latency_sum_s=delta("ragplane_query_variant_latency_seconds_sum", **labels),
                    cost_usd=delta("ragplane_query_variant_cost_usd_total", **labels),
                )
            )
        return figures

    def describe(self) -> str:
        n = self.answers
        return (
            f"{self.experiment}/{self.variant}: {n} answers, mean latency "
            f"{self.latency_sum_s / n * 1000:.0f} ms, cost ${self.cost_usd:.6f} "
            f"(${self.cost_usd / n:.6f} per answer), cache hit rate {self.cached / n:.0%}, "
            f"degradation rate {self.degraded / n:.0%}"
        )
