"""Hitters (data/hitters.csv): 1986 batting and career statistics of Major League Baseball players,
target Salary (1987, thousands of dollars; empty for 59 players, whose rows are dropped)."""

import pandera.pandas as pa
from pandera.typing import Series

LEAGUES = ["A", "N"]  # American, National
DIVISIONS = ["E", "W"]  # East, West


class HittersSchema(pa.DataFrameModel):
    """Counts are never negative; upper bounds are generous for one season or one career."""

    AtBat: Series[int] = pa.Field(ge=0, le=800)
    Hits: Series[int] = pa.Field(ge=0, le=300)
    HmRun: Series[int] = pa.Field(ge=0, le=80)
    Runs: Series[int] = pa.Field(ge=0, le=200)
    RBI: Series[int] = pa.Field(ge=0, le=200)
    Walks: Series[int] = pa.Field(ge=0, le=250)
    Years: Series[int] = pa.Field(ge=1, le=30)
    CAtBat: Series[int] = pa.Field(ge=0, le=15000)
    CHits: Series[int] = pa.Field(ge=0, le=4500)
    CHmRun: Series[int] = pa.Field(ge=0, le=800)
    CRuns: Series[int] = pa.Field(ge=0, le=2500)
    CRBI: Series[int] = pa.Field(ge=0, le=2500)
    CWalks: Series[int] = pa.Field(ge=0, le=2600)
    League: Series[str] = pa.Field(isin=LEAGUES)
    Division: Series[str] = pa.Field(isin=DIVISIONS)
    PutOuts: Series[int] = pa.Field(ge=0, le=2000)
    Assists: Series[int] = pa.Field(ge=0, le=600)
    Errors: Series[int] = pa.Field(ge=0, le=60)
    Salary: Series[float] = pa.Field(gt=0, le=10000, nullable=True)
    NewLeague: Series[str] = pa.Field(isin=LEAGUES)

    class Config:
        coerce = True
        strict = True
