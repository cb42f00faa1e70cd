"""What every section of a week's report shares: the week, its model run and segments, the segment colours, and
the customers' feature snapshot in the model's scaled space (read once)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np
import pandas as pd

from segflow.report.plots import segment_colors
from segflow.settings import Settings
from segflow.warehouse import table_exists


@dataclass
class ReportContext:
    settings: Settings
    as_of: datetime
    run: dict | None  # the week's ml.model_runs row (None: the week was never segmented)
    segments: pd.DataFrame  # the run's ml.segments rows
    previous_segments: pd.DataFrame  # the previous accepted run's ml.segments rows (names for the flow)
    con: object = field(repr=False, default=None)  # the read-only warehouse connection, open while sections load

    @property
    def run_id(self) -> str | None:
        return self.run["run_id"] if self.run else None

    @cached_property
    def params(self) -> dict:
        return json.loads(self.run["params"]) if self.run and self.run.get("params") else {}

    @cached_property
    def features(self) -> list[str]:
        return json.loads(self.run["features"]) if self.run and self.run.get("features") else []

    @cached_property
    def colors(self) -> dict[str, str]:
        return segment_colors([*self.segments.get("segment_id", []), *self.previous_segments.get("segment_id", [])])

    def name_of(self, segment_id: str | None) -> str:
        for frame in (self.segments, self.previous_segments):
            hit = frame[frame["segment_id"] == segment_id] if len(frame) else frame
            if len(hit):
                return f"{segment_id} {hit['segment_name'].iloc[0]}"
        return str(segment_id)

    @cached_property
    def scaled(self) -> tuple[pd.DataFrame, np.ndarray] | None:
        """(customer_id + segment_id per row, the model-space matrix: features signed-log1p'd as the run's params
        say, imputed, standardised) of the week's feature snapshot; None without a snapshot."""
        from ml.features import SegmentPreprocessor, feature_matrix

        if not self.run or not self.features or not table_exists(self.con, "ml", "feature_snapshots"):
            return None
        cols = ", ".join(f's."{c}"' for c in self.features)
        frame = self.con.execute(
            f"select s.customer_id, a.segment_id, {cols} from ml.feature_snapshots s inner join "
            "ml.segment_assignments a on a.customer_id = s.customer_id and a.as_of = s.as_of "
            "where s.as_of = ? and a.run_id = ? order by s.customer_id", [self.as_of, self.run_id]).df()
        if frame.empty:
            return None
        log_features = set(self.params.get("log_features", self.settings.log_features))
        pre = SegmentPreprocessor(log_columns=tuple(i for i, c in enumerate(self.features) if c in log_features))
        matrix = pre.fit(feature_matrix(frame, self.features)).transform(feature_matrix(frame, self.features))
        return frame[["customer_id", "segment_id"]], matrix[:, :len(self.features)]


def load_context(con, settings: Settings, as_of: datetime) -> ReportContext:
    run = None
    segments = previous = pd.DataFrame(columns=["segment_id", "segment_name"])
    if table_exists(con, "ml", "model_runs"):
        rows = con.execute("select * from ml.model_runs where as_of = ?", [as_of]).df()
        if len(rows):
            run = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rows.iloc[0].items()}
            segments = con.execute("select * from ml.segments where run_id = ? order by segment_id",
                                   [run["run_id"]]).df()
            if run.get("previous_run_id"):
                previous = con.execute("select * from ml.segments where run_id = ? order by segment_id",
                                       [run["previous_run_id"]]).df()
    return ReportContext(settings=settings, as_of=as_of, run=run, segments=segments, previous_segments=previous,
                         con=con)
