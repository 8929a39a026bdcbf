{#- A deterministic bigint from text: PostgreSQL's 64-bit hashtextextended(text, 0), the hash behind hash
    partitioning (so it stays the same across runs, databases and PostgreSQL versions). The same input
    gives the same id every time, unlike a SERIAL, so rebuilt tables are identical. It is several times
    cheaper than md5 on millions of rows. -#}
{% macro stable_bigint(text_expr) -%}
    hashtextextended({{ text_expr }}, 0)
{%- endmacro %}

{#- md5 of a row's payload columns, stable across runs: the loader compares it with the hash it stored
    when it last wrote the object (same hash -> skip, new hash -> update). -#}
{% macro payload_hash(columns) -%}
    md5(jsonb_build_array({{ columns | join(', ') }})::text)
{%- endmacro %}

{#- Zephyr's id when it gave one, else a deterministic NEGATIVE surrogate from the object's stable key
    (negative, so it can never collide with a real Zephyr id; the same key always gives the same id). -#}
{% macro id_or_surrogate(id_expr, key_expr) -%}
    coalesce({{ id_expr }}, -1 - ({{ stable_bigint(key_expr) }} & 9223372036854775807))
{%- endmacro %}
