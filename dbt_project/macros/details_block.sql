{#- Zephyr values that the qTest object has no field for, as a block at the end of its description:
    <p><b>Zephyr details</b><br>Label: value<br>...</p>, one line per non-null value, in the order given,
    and '' when every value is null. Values are HTML-escaped (the line breaks are the block's own), so
    zephyr_qtest/lib/details_block.py reads each back exactly as it was; the proof checks the values there.
    pairs: a list of [label, SQL expression of the value as text]; lines (optional): a SQL expression of
    more lines, each made by details_line (for labels that repeat or come from the data: links, custom
    fields), after the pairs. -#}
{% macro details_block(pairs, lines=none) -%}
    coalesce(
        '<p><b>{{ details_header() }}</b>' || nullif(concat_ws(''
        {%- for label, expression in pairs %},
            '<br>' || {{ sql_string(label) }} || ': ' || {{ html_escape(expression) }}
        {%- endfor %}
        {%- if lines is not none %},
            {{ lines }}
        {%- endif %}
        ), '') || '</p>',
        ''
    )
{%- endmacro %}


{#- One line of the block whose label is a SQL expression too (null when the value is null), to aggregate
    with string_agg(..., '') into details_block's lines. -#}
{% macro details_line(label_expression, value_expression) -%}
    '<br>' || {{ html_escape(label_expression) }} || ': ' || {{ html_escape(value_expression) }}
{%- endmacro %}


{#- The header line of the block (lib/details_block.py HEADER says the same). -#}
{% macro details_header() -%}Zephyr details{%- endmacro %}


{#- A text value with &, < and > escaped, for HTML the migration writes around it. -#}
{% macro html_escape(expression) -%}
    replace(replace(replace(({{ expression }})::text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')
{%- endmacro %}
