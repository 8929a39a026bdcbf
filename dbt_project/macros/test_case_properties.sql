{#- The properties of test cases, current or older versions alike, as CTEs (ending in `properties`:
    object_id, properties): one rule for both marts (qtest_test_cases, qtest_test_case_versions), so an
    older version in qTest carries what its current version would under the same mapping.
    The caller defines these CTEs (object_id is the id of the case, or of the version):
      `cases`          - object_id, key (the case's key), priority, status (names), owner_id, component_id,
                         estimated_time_ms, created_on
      labels           - object_id, label, label_order
      custom_fields    - object_id, field_name, field_value, field_type (canonical.custom_field's rules)
      issue_links      - object_id, issue_id, target_url, link_order
      web_links        - object_id, url, description, link_type, link_order
      automated_cases  - test_case_key (cases Zephyr ran by automation)
      priority_map, status_map (TEST_CASE rows), user_map, field_map (TestCase rows): the seeds.
    Values stay narrow text (value_text + value_type) until they are aggregated: the JSON is built once,
    inside the aggregate. -#}
{% macro test_case_properties(cases) -%}

builtin_values as (

    select
        {{ cases }}.object_id,
        builtin.zephyr_field,
        null as default_label,
        builtin.value_text,
        builtin.value_type
    from {{ cases }}
    left join priority_map
        on {{ cases }}.priority = priority_map.zephyr_name
    left join status_map
        on {{ cases }}.status = status_map.zephyr_name
    -- An owner without a qTest user is left out here and listed in unmapped.
    left join user_map as owners
        on {{ cases }}.owner_id = owners.zephyr_account_id
    left join automated_cases
        on {{ cases }}.key = automated_cases.test_case_key
    cross join lateral (
        values
            ('key', {{ cases }}.key, 'text'),
            -- The fingerprint by which qTest's bulk auto-test-logs endpoint finds the case again.
            ('automationContent', {{ cases }}.key, 'text'),
            ('automated', case when automated_cases.test_case_key is not null then 'Yes' end, 'text'),
            ('priority', coalesce(priority_map.qtest_name, {{ cases }}.priority), 'text'),
            ('status', coalesce(status_map.qtest_name, {{ cases }}.status), 'text'),
            ('owner', owners.qtest_username, 'text'),
            ('component', {{ cases }}.component_id::text, 'text'),
            ('estimatedTime', {{ cases }}.estimated_time_ms::text, 'number'),
            -- qTest sets its own created date: Zephyr's goes in a field of its own, as an instant.
            ('createdOn', to_char({{ cases }}.created_on, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'text')
    ) as builtin (zephyr_field, value_text, value_type)
    where builtin.value_text is not null

),

label_values as (

    select
        object_id,
        'labels' as zephyr_field,
        null as default_label,
        jsonb_agg(label order by label_order)::text as value_text,
        'multi_select' as value_type
    from labels
    group by object_id

),

-- Jira issue links: a text property listing the linked issues (their URLs when Zephyr sent one, else the
-- Jira issue ids), in Zephyr's order; the links themselves stay in canonical.issue_link.
issue_link_values as (

    select
        object_id,
        'issueLinks' as zephyr_field,
        null as default_label,
        string_agg(coalesce(target_url, issue_id::text), ', ' order by link_order) as value_text,
        'text' as value_type
    from issue_links
    where coalesce(target_url, issue_id::text) is not null
    group by object_id

),

-- Web links: a text-area property, one line per link, "url (description) [TYPE]" (qTest has no web-link
-- object); the description and type only when Zephyr has them.
web_link_values as (

    select
        object_id,
        'webLinks' as zephyr_field,
        null as default_label,
        string_agg(
            url || coalesce(' (' || nullif(description, '') || ')', '') || coalesce(' [' || link_type || ']', ''),
            chr(10)
            order by link_order
        ) as value_text,
        'text' as value_type
    from web_links
    where url <> ''
    group by object_id

),

custom_values as (

    select
        custom_fields.object_id,
        'customFields.' || custom_fields.field_name as zephyr_field,
        custom_fields.field_name as default_label,
        coalesce(user_map.qtest_username, custom_fields.field_value) as value_text,
        custom_fields.field_type as value_type
    from custom_fields
    left join user_map
        on
            custom_fields.field_type = 'user'
            and custom_fields.field_value = user_map.zephyr_account_id
    where custom_fields.field_value is not null

),

all_values as (

    select * from builtin_values
    union all
    select * from label_values
    union all
    select * from issue_link_values
    union all
    select * from web_link_values
    union all
    select * from custom_values

),

-- A row of custom_field_map decides the label (an empty label drops the field); without one, a custom
-- field keeps its Zephyr name and a built-in field is left out.
labelled_values as (

    select
        all_values.object_id,
        all_values.zephyr_field,
        case
            when field_map.zephyr_field is not null then field_map.qtest_label
            else all_values.default_label
        end as field_label,
        all_values.value_text,
        {{ declared_value_type('all_values.value_type', 'field_map.zephyr_type') }} as value_type
    from all_values
    left join field_map
        on all_values.zephyr_field = field_map.zephyr_field

),

properties as (

    select
        object_id,
        {{ properties_array('field_label', 'value_text', 'value_type', 'zephyr_field') }} as properties
    from labelled_values
    where nullif(field_label, '') is not null
    group by object_id

)

{%- endmacro %}


{#- The canonical field_type of a Zephyr custom-field value, read off its JSON type and text (Zephyr
    publishes no field definitions): boolean, number, multi_select (an array), json (an object), date (a
    'yyyy-MM-dd' day), user (an Atlassian accountId), multiline_text, text; null for a JSON null. String
    tests without regular expressions: this runs on millions of values. -#}
{% macro custom_field_type(json_type, value_text) -%}
    case {{ json_type }}
        when 'boolean' then 'boolean'
        when 'number' then 'number'
        when 'array' then 'multi_select'
        when 'object' then 'json'
        when 'string' then
            case
                when length({{ value_text }}) = 10
                    and translate({{ value_text }}, '0123456789', '9999999999') = '9999-99-99'
                    then 'date'
                -- Atlassian accountIds: 24 lowercase letters / digits (with digits), or <digits>:<uuid>.
                when length({{ value_text }}) = 24
                    and translate({{ value_text }}, '0123456789abcdefghijklmnopqrstuvwxyz', '') = ''
                    and translate({{ value_text }}, 'abcdefghijklmnopqrstuvwxyz', '') <> ''
                    then 'user'
                when length({{ value_text }}) between 38 and 60
                    and translate({{ value_text }}, '0123456789abcdef', '') = ':----'
                    then 'user'
                when strpos(lower({{ value_text }}), '<br') > 0 then 'multiline_text'
                else 'text'
            end
    end
{%- endmacro %}


{#- A Zephyr custom-field value as canonical text: text as it is; numbers, booleans ('true' / 'false'),
    arrays and objects as their JSON text; null for a JSON null. -#}
{% macro custom_field_text(json_value, json_type, value_text) -%}
    case {{ json_type }}
        when 'null' then null
        when 'string' then {{ value_text }}
        else {{ json_value }}::text
    end
{%- endmacro %}
