-- Older versions of the Zephyr test cases -> qTest versions of the same case, which the loader replays
-- oldest first (the first creates the case, each later one updates it; each is approved, so qTest's
-- version list shows it), before the case's current version (qtest_test_cases) is written last.
-- Name, description (the objective), precondition and properties follow the current case's rules (the
-- properties through the same macro, test_case_properties: priority, status, owner, labels, component,
-- estimated time, created on, issue and web links, custom fields, the Zephyr key). Zephyr's v2 API gives
-- no steps of an older version: its qTest version has none (the current steps would pass for the old
-- ones), and the proof names them.

with

versions as (

    select * from {{ ref('stg_zephyr__test_case_versions') }}
    where project_key = '{{ zephyr_project_key() }}'
    -- offset 0: evaluate the view's jsonb casts once per row (not again in every join and column)
    offset 0

),

-- Only cases the migration publishes: a version of a case it does not know has nowhere to go.
test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

priorities as (

    select * from {{ ref('stg_zephyr__priorities') }}
    where project_key = '{{ zephyr_project_key() }}'

),

statuses as (

    select * from {{ ref('stg_zephyr__statuses') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- Cases Zephyr ran by automation: "Automation" = Yes in qTest, on every version as on the current one.
automated_cases as (

    select distinct test_case_key
    from {{ ref('test_execution') }}
    where
        project_key = '{{ zephyr_project_key() }}'
        and automated

),

priority_map as (

    select * from {{ ref('priority_map') }}

),

status_map as (

    select * from {{ ref('status_map') }}
    where status_type = 'TEST_CASE'

),

user_map as (

    select * from {{ ref('user_map') }}

),

field_map as (

    select * from {{ ref('custom_field_map') }}
    where object_type = 'TestCase'

),

----------  each version as a case, its collections unnested as the canonical marts unnest the case's

property_cases as (

    select
        versions.test_case_version_id as object_id,
        versions.test_case_key as key,
        priorities.priority_name as priority,
        statuses.status_name as status,
        versions.owner_account_id as owner_id,
        versions.component_id,
        versions.estimated_time_ms,
        versions.created_on
    from versions
    left join priorities
        on versions.priority_id = priorities.priority_id
    left join statuses
        on versions.status_id = statuses.status_id

),

labels as (

    select
        versions.test_case_version_id as object_id,
        label.ordinality as label_order,
        label.value #>> '{}' as label
    from versions
    cross join lateral jsonb_array_elements(versions.labels) with ordinality as label
    where jsonb_typeof(label.value) in ('string', 'number', 'boolean')

),

custom_field_values as (

    select
        versions.test_case_version_id as object_id,
        fields.key as field_name,
        fields.value as field_value_json,
        jsonb_typeof(fields.value) as json_type,
        fields.value #>> '{}' as value_text
    from versions
    cross join lateral jsonb_each(versions.custom_fields) as fields

),

custom_fields as (

    select
        object_id,
        field_name,
        {{ custom_field_text('field_value_json', 'json_type', 'value_text') }} as field_value,
        {{ custom_field_type('json_type', 'value_text') }} as field_type
    from custom_field_values

),

issue_links as (

    select
        versions.test_case_version_id as object_id,
        {{ json_bigint("link.value -> 'issueId'") }} as issue_id,
        link.value ->> 'target' as target_url,
        link.ordinality as link_order
    from versions
    cross join lateral jsonb_array_elements(versions.issue_links) with ordinality as link

),

web_links as (

    select
        versions.test_case_version_id as object_id,
        coalesce(link.value ->> 'url', '') as url,
        link.value ->> 'description' as description,
        (case
            when link.value ->> 'type' in ('COVERAGE', 'BLOCKS', 'RELATED') then link.value ->> 'type'
        end) as link_type,
        link.ordinality as link_order
    from versions
    cross join lateral jsonb_array_elements(versions.web_links) with ordinality as link

),

{{ test_case_properties('property_cases') }},

final as (

    select
        versions.project_key::varchar as project_key,
        (versions.test_case_key || '@' || versions.version_number)::varchar as source_key,
        versions.test_case_key::varchar as parent_source_key,
        versions.test_case_version_id,
        versions.version_number::integer as version_number,
        coalesce(nullif(versions.name, ''), versions.test_case_key)::varchar as name,
        versions.objective::text as description,
        versions.precondition::text as precondition,
        coalesce(properties.properties, '[]'::jsonb) as properties,
        -- Replayed level by level: every case's first version, then every second one, ...
        versions.version_number::integer as load_order,
        {{ payload_hash([
            "coalesce(nullif(versions.name, ''), versions.test_case_key)",
            "versions.objective",
            "versions.precondition",
            "coalesce(properties.properties, '[]'::jsonb)",
        ]) }}::varchar as payload_hash,
        versions._loaded_at
    from versions
    inner join test_cases
        on versions.test_case_key = test_cases.key
    left join properties
        on versions.test_case_version_id = properties.object_id

)

select * from final
