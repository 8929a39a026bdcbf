{#- Casts from jsonb that never raise: a value of the wrong JSON type or shape becomes null (the raw
    payload keeps it, and the extraction records the problem in zephyr_raw.extraction_issues).
    They avoid regular expressions on the common path: these run on millions of rows. -#}

{#- A whole number (a JSON integer, or a string of digits) as bigint. -#}
{% macro json_bigint(json_expr) -%}
    case jsonb_typeof({{ json_expr }})
        when 'number' then
            case
                when ({{ json_expr }})::numeric between -9223372036854775808 and 9223372036854775807
                    and ({{ json_expr }})::numeric = trunc(({{ json_expr }})::numeric)
                    then ({{ json_expr }})::bigint
            end
        when 'string' then
            case
                when ({{ json_expr }} #>> '{}') ~ '^-?[0-9]{1,18}$'
                    then ({{ json_expr }} #>> '{}')::bigint
            end
    end
{%- endmacro %}

{#- A whole number as integer. -#}
{% macro json_int(json_expr) -%}
    case jsonb_typeof({{ json_expr }})
        when 'number' then
            case
                when ({{ json_expr }})::numeric between -2147483648 and 2147483647
                    and ({{ json_expr }})::numeric = trunc(({{ json_expr }})::numeric)
                    then ({{ json_expr }})::integer
            end
        when 'string' then
            case
                when ({{ json_expr }} #>> '{}') ~ '^-?[0-9]{1,9}$'
                    then ({{ json_expr }} #>> '{}')::integer
            end
    end
{%- endmacro %}

{#- The id of a {id, self} reference. -#}
{% macro json_link_id(json_expr) -%}
    {{ json_bigint("(" ~ json_expr ~ ") -> 'id'") }}
{%- endmacro %}

{#- A JSON boolean. -#}
{% macro json_bool(json_expr) -%}
    case
        when jsonb_typeof({{ json_expr }}) = 'boolean'
            then ({{ json_expr }})::boolean
    end
{%- endmacro %}

{#- A JSON array, else an empty one (so jsonb_array_elements never fails). -#}
{% macro json_array(json_expr) -%}
    case
        when jsonb_typeof({{ json_expr }}) = 'array'
            then {{ json_expr }}
        else '[]'::jsonb
    end
{%- endmacro %}

{#- A JSON object, else an empty one (so jsonb_each never fails). -#}
{% macro json_object(json_expr) -%}
    case
        when jsonb_typeof({{ json_expr }}) = 'object'
            then {{ json_expr }}
        else '{}'::jsonb
    end
{%- endmacro %}

{#- An ISO 8601 date-time text as a UTC timestamp: Zephyr's own "2024-02-02T09:00:00Z" on a fast path
    (no regular expression), any other ISO form (fractions, an offset, no zone = UTC) on a slow one.
    Anything that is not a real date-time (wrong shape, month 13, 30 February) becomes null. -#}
{% macro iso_timestamp(text_expr) -%}
    case
        when translate({{ text_expr }}, '0123456789', '9999999999') = '9999-99-99T99:99:99Z'
            and substr({{ text_expr }}, 1, 4) >= '0001'
            and substr({{ text_expr }}, 6, 2) between '01' and '12'
            and substr({{ text_expr }}, 9, 2) between '01' and '28'
            and substr({{ text_expr }}, 12, 2) <= '23'
            and substr({{ text_expr }}, 15, 2) <= '59'
            and substr({{ text_expr }}, 18, 2) <= '59'
            then left({{ text_expr }}, 19)::timestamp
        when {{ text_expr }} ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?)?([Zz]|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?$'
            then
                case
                    when substr({{ text_expr }}, 9, 2)::integer <= extract(
                        day from (substr({{ text_expr }}, 1, 7) || '-01')::date + interval '1 month' - interval '1 day'
                    )
                        then
                            case
                                when {{ text_expr }} ~ '([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$'
                                    then ({{ text_expr }})::timestamptz at time zone 'UTC'
                                else ({{ text_expr }})::timestamp
                            end
                end
    end
{%- endmacro %}

{#- The test case key in an execution's testCase.self, ".../testcases/<KEY>/versions/<N>" (null when the
    link has another shape). String functions, not a regular expression: this runs once per execution. -#}
{% macro execution_case_key(self_expr) -%}
    case
        when split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 2) = 'versions'
            then nullif(split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 1), '')
    end
{%- endmacro %}

{#- The version number in an execution's testCase.self (null when it is not a number). -#}
{% macro execution_case_version(self_expr) -%}
    case
        when split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 2) = 'versions'
            and length(split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 3)) between 1 and 9
            and translate(split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 3), '0123456789', '') = ''
            then split_part(split_part({{ self_expr }}, '/testcases/', 2), '/', 3)::integer
    end
{%- endmacro %}

{#- The keys of a JSON object as columns, for `cross join lateral {{ json_fields(...) }} as x (...)`: one
    pass over the object (a compressed payload is decompressed once per row, not once per key read).
    A value that is not an object gives one row of nulls. -#}
{% macro json_fields(json_expr) -%}
    jsonb_to_record(
        case
            when jsonb_typeof({{ json_expr }}) = 'object' then {{ json_expr }}
        end
    )
{%- endmacro %}
