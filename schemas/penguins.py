"""Palmer penguins (data/penguins.csv): three species, measurements with a few gaps."""

import pandera.pandas as pa
from pandera.typing import Series

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]


class PenguinsSchema(pa.DataFrameModel):
    """Ranges are the physically plausible ones, wider than the observed 344 birds."""

    species: Series[str] = pa.Field(isin=SPECIES)
    island: Series[str] = pa.Field(isin=ISLANDS)
    bill_length_mm: Series[float] = pa.Field(ge=20, le=80, nullable=True)
    bill_depth_mm: Series[float] = pa.Field(ge=8, le=30, nullable=True)
    flipper_length_mm: Series[float] = pa.Field(ge=150, le=250, nullable=True)
    body_mass_g: Series[float] = pa.Field(ge=2000, le=7000, nullable=True)
    sex: Series[str] = pa.Field(isin=["male", "female"], nullable=True)
    year: Series[int] = pa.Field(ge=2007, le=2009)

    class Config:
        coerce = True
        strict = True
