{#- A text value as a SQL string literal (quotes doubled), for vars written into SQL. -#}
{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


{#- The qTest properties of one object as a JSON array of {field_label, value, zephyr_field}, ordered by
    label: an aggregate over rows of (label, value as text, its canonical field_type, zephyr field).
    The value goes in typed: multi-select arrays stay arrays, numbers numbers, booleans booleans, the rest
    text; a day (field_type 'date') is text marked "data_type": "date", so that the field made for it is
    a date picker, and a declared single choice (value type 'choice') text marked "data_type": "choice", so
    that it is a combo box (lib/qtest/field_setup.py). The JSON is assembled as text and parsed once per object (building a jsonb value per property
    costs several times more on millions of rows). With presorted=true the rows must arrive sorted by
    (object, label, zephyr field) from a sorted subquery - PostgreSQL keeps that order in the aggregate
    when the plan is serial (the model sets max_parallel_workers_per_gather = 0) - which saves a sort
    per object; otherwise the aggregate sorts each object's rows itself. -#}
{% macro properties_array(label_expr, value_text_expr, value_type_expr, zephyr_field_expr, presorted=false) -%}
    ('[' || string_agg(
        '{"field_label":' || to_json({{ label_expr }})::text
        || ',"value":' || case
            when {{ value_type_expr }} in ('number', 'boolean', 'multi_select', 'json') then {{ value_text_expr }}
            else to_json({{ value_text_expr }})::text
        end
        || ',"zephyr_field":' || to_json({{ zephyr_field_expr }})::text
        || case when {{ value_type_expr }} in ('date', 'choice') then ',"data_type":"' || {{ value_type_expr }} || '"' else '' end
        || '}',
        ','
        {%- if not presorted %}
        order by {{ label_expr }}, {{ zephyr_field_expr }}
        {%- endif %}
    ) || ']')::jsonb
{%- endmacro %}


{#- The source key of a test log: the Zephyr execution key, or execution:<id> when it has none. -#}
{% macro execution_source_key(key_expr, id_expr) -%}
    coalesce({{ key_expr }}, 'execution:' || {{ id_expr }})
{%- endmacro %}


{#- The source key of a test cycle that the bulk auto-test-logs endpoint places automation runs in: the
    Zephyr cycle's key, then the module names (a text array) under it, as qTest matches them (by name and
    location), e.g. UT-R1 > ["Automated executions"]. -#}
{% macro automation_cycle_key(cycle_key_expr, names_expr) -%}
    ({{ cycle_key_expr }} || ' > ' || to_jsonb({{ names_expr }})::text)
{%- endmacro %}


{#- What the (empty) automation module says about itself in qTest. -#}
{% macro automation_module_description() -%}
    {{- "Required by qTest's bulk auto-test-logs endpoint (module_names) and left empty: the runs of automated Zephyr executions are in the \"" ~ var('automation_folder_name') ~ "\" sub-cycle of their test cycle." -}}
{%- endmacro %}


{#- The value type of a property after custom_field_map's zephyr_type: a text value of a field declared
    `single_choice` is a choice (one option's name; Zephyr's API does not say which text fields are lists). -#}
{% macro declared_value_type(value_type_expr, zephyr_type_expr) -%}
    case
        when {{ zephyr_type_expr }} = 'single_choice' and {{ value_type_expr }} in ('text', 'multiline_text')
            then 'choice'
        else {{ value_type_expr }}
    end
{%- endmacro %}
