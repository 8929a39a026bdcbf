{#- Custom schema names are used as they are (staging, canonical, qtest_mapping), in every target:
    the Dagster assets, the loader and the data dictionary all name these schemas directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
