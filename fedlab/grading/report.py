"""What a check prints: each criterion passed or failed, its points, and a hint."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Result:
    """The outcome of one criterion: ``score`` of ``points``, what we saw, and a hint."""

    name: str
    points: int
    score: int
    message: str = ""
    hint: str = ""

    @property
    def passed(self) -> bool:
        """True when the criterion earned all its points."""
        return self.score == self.points


@dataclass
class Report:
    """The graded state of one exercise; displays as text or as an HTML table."""

    exercise: str
    results: list[Result] = field(default_factory=list)
    error: str = ""  # a problem with the whole submission (it did not run, timed out...)

    @property
    def score(self) -> int:
        """Points earned."""
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> int:
        """Points available."""
        return sum(r.points for r in self.results)

    def __repr__(self) -> str:
        lines = [f"{self.exercise}: {self.score}/{self.max_score} points"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for r in self.results:
            mark = "pass" if r.passed else "FAIL"
            lines.append(f"  [{mark}] {r.name} ({r.score}/{r.points})")
            if r.message:
                lines.append(f"         {r.message}")
            if r.hint and not r.passed:
                lines.append(f"         hint: {r.hint}")
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        rows = []
        for r in self.results:
            colour = "#1a7f37" if r.passed else "#cf222e"
            note = html.escape(r.message)
            if r.hint and not r.passed:
                note += f"<br><i>hint: {html.escape(r.hint)}</i>"
            rows.append(
                f"<tr><td style='color:{colour};font-weight:bold'>"
                f"{'pass' if r.passed else 'fail'}</td><td>{html.escape(r.name)}</td>"
                f"<td>{r.score}/{r.points}</td><td style='text-align:left'>{note}</td></tr>"
            )
        error = f"<p style='color:#cf222e'>{html.escape(self.error)}</p>" if self.error else ""
        return (
            f"<div class='fedlab-report'><b>{html.escape(self.exercise)}: "
            f"{self.score}/{self.max_score} points</b>{error}"
            "<table><tr><th></th><th>criterion</th><th>points</th><th>details</th></tr>"
            f"{''.join(rows)}</table></div>"
        )

    def to_dict(self) -> dict:
        """Plain data (for JSON between the grading kernel and the command)."""
        return {"exercise": self.exercise, "error": self.error,
                "results": [asdict(r) for r in self.results]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """The inverse of ``to_dict``."""
        return cls(data["exercise"], [Result(**r) for r in data["results"]], data.get("error", ""))

    def gradescope(self) -> dict:
        """This report in Gradescope's autograder ``results.json`` format."""
        tests = [
            {"name": r.name, "score": r.score, "max_score": r.points,
             "status": "passed" if r.passed else "failed",
             "output": "\n".join(x for x in (r.message, r.hint and f"hint: {r.hint}") if x)}
            for r in self.results
        ]  # fmt: skip
        out = {"score": self.score, "tests": tests}
        if self.error:
            out["output"] = self.error
        return out
