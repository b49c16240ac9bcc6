"""CoIL 2000 Caravan insurance (data/caravan.csv): 85 coded socio-demographic and product-ownership
columns, target Purchase (Yes for about 6% of customers).

Codes follow the CoIL 2000 data dictionary: MOSTYPE (customer subtype, 1-41), MAANTHUI (houses,
1-10), MGEMOMV (household size, 1-6), MGEMLEEF (age band, 1-6), MOSHOOFD (main type, 1-10),
MKOOPKLA (purchasing power class, 1-8); other M* columns are percentage bands 0-9, P* columns are
contribution bands 0-9 and A* columns are numbers of policies 0-12.
"""

import pandera.pandas as pa

CODE_RANGES = {
    "MOSTYPE": (1, 41),
    "MAANTHUI": (1, 10),
    "MGEMOMV": (1, 6),
    "MGEMLEEF": (1, 6),
    "MOSHOOFD": (1, 10),
    "MKOOPKLA": (1, 8),
}
PREFIX_RANGES = {"M": (0, 9), "P": (0, 9), "A": (0, 12)}

# Column order of the original file, after the coded columns above.
BAND_COLUMNS = [
    "MGODRK",
    "MGODPR",
    "MGODOV",
    "MGODGE",
    "MRELGE",
    "MRELSA",
    "MRELOV",
    "MFALLEEN",
    "MFGEKIND",
    "MFWEKIND",
    "MOPLHOOG",
    "MOPLMIDD",
    "MOPLLAAG",
    "MBERHOOG",
    "MBERZELF",
    "MBERBOER",
    "MBERMIDD",
    "MBERARBG",
    "MBERARBO",
    "MSKA",
    "MSKB1",
    "MSKB2",
    "MSKC",
    "MSKD",
    "MHHUUR",
    "MHKOOP",
    "MAUT1",
    "MAUT2",
    "MAUT0",
    "MZFONDS",
    "MZPART",
    "MINKM30",
    "MINK3045",
    "MINK4575",
    "MINK7512",
    "MINK123M",
    "MINKGEM",
    "PWAPART",
    "PWABEDR",
    "PWALAND",
    "PPERSAUT",
    "PBESAUT",
    "PMOTSCO",
    "PVRAAUT",
    "PAANHANG",
    "PTRACTOR",
    "PWERKT",
    "PBROM",
    "PLEVEN",
    "PPERSONG",
    "PGEZONG",
    "PWAOREG",
    "PBRAND",
    "PZEILPL",
    "PPLEZIER",
    "PFIETS",
    "PINBOED",
    "PBYSTAND",
    "AWAPART",
    "AWABEDR",
    "AWALAND",
    "APERSAUT",
    "ABESAUT",
    "AMOTSCO",
    "AVRAAUT",
    "AAANHANG",
    "ATRACTOR",
    "AWERKT",
    "ABROM",
    "ALEVEN",
    "APERSONG",
    "AGEZONG",
    "AWAOREG",
    "ABRAND",
    "AZEILPL",
    "APLEZIER",
    "AFIETS",
    "AINBOED",
    "ABYSTAND",
]


def code_range(column: str) -> tuple[int, int]:
    """The allowed codes of a column, from the data dictionary."""
    return CODE_RANGES.get(column) or PREFIX_RANGES[column[0]]


def coded_column(column: str) -> pa.Column:
    low, high = code_range(column)
    return pa.Column(int, pa.Check.in_range(low, high), nullable=False, coerce=True, name=column)


FEATURE_COLUMNS = [*CODE_RANGES.keys(), *BAND_COLUMNS]

CaravanSchema = pa.DataFrameSchema(
    {
        **{column: coded_column(column) for column in FEATURE_COLUMNS},
        "Purchase": pa.Column(str, pa.Check.isin(["No", "Yes"]), coerce=True),
    },
    strict=True,
    name="CaravanSchema",
)
