{#- Zephyr values that the qTest object has no field for, as a block at the end of its description:
    <p><b>Zephyr details</b><br>Label: value<br>...</p>, one line per non-null value, in the order given,
    and '' when every value is null. Values are HTML-escaped (the line breaks are the block's own), so
    zephyr_qtest/lib/details_block.py reads each back exactly as it was; the proof checks the values there.
    pairs: a list of [label, SQL expression of the value as text]. -#}
{% macro details_block(pairs) -%}
    coalesce(
        '<p><b>{{ details_header() }}</b>' || nullif(concat_ws(''
        {%- for label, expression in pairs %},
            '<br>' || {{ sql_string(label) }} || ': ' || {{ html_escape(expression) }}
        {%- endfor %}
        ), '') || '</p>',
        ''
    )
{%- endmacro %}


{#- The header line of the block (lib/details_block.py HEADER says the same). -#}
{% macro details_header() -%}Zephyr details{%- endmacro %}


{#- A text value with &, < and > escaped, for HTML the migration writes around it. -#}
{% macro html_escape(expression) -%}
    replace(replace(replace(({{ expression }})::text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')
{%- endmacro %}
