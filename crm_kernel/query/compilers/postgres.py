"""PostgreSQL: the base compiler on psycopg 3, with checked casts from sql/007_custom_field_casts.sql."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg

from .base import Compiler

# PostgreSQL 15 has no TRY_CAST: dates and times go through functions that catch a bad value;
# every other custom-field form is fully checked by its pattern, so a plain cast cannot fail.
_CHECKED = {sa.Date: "crm_try_date", sa.DateTime: "crm_try_timestamptz"}


class PostgresCompiler(Compiler):
    name = "postgres"
    dialect = psycopg.dialect()
    # psycopg's pyformat doubles every % in literal SQL; named parameters read as written.
    preview_dialect = psycopg.dialect(paramstyle="named")

    def read_custom_list(self, value):
        return sa.func.crm_json_texts(value, type_=sa.ARRAY(sa.Text()))  # sql/018_multiselect.sql

    def checked_cast(self, text, target):
        name = _CHECKED.get(type(target))
        return getattr(sa.func, name)(text, type_=target) if name else sa.cast(text, target)
