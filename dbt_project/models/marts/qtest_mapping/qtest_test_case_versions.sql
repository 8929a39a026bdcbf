-- Older versions of the Zephyr test cases -> qTest versions of the same case, which the loader replays
-- oldest first (the first creates the case, each later one updates it; each is approved, so qTest's
-- version list shows it), before the case's current version (qtest_test_cases) is written last.
-- Name, description (the objective) and precondition follow the current case's rules; of the properties,
-- an older version carries the Zephyr key only (labelled through custom_field_map, as the case's), which
-- finds a case whose create answer was lost. Zephyr's v2 API gives no steps of an older version: its qTest
-- version has none (the current steps would pass for the old ones), and the proof names them.

with

versions as (

    select * from {{ ref('stg_zephyr__test_case_versions') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- Only cases the migration publishes: a version of a case it does not know has nowhere to go.
test_cases as (

    select * from {{ ref('test_case') }}
    where project_key = '{{ zephyr_project_key() }}'

),

field_map as (

    select * from {{ ref('custom_field_map') }}
    where object_type = 'TestCase'

),

-- The case's key under the label custom_field_map gives it (none: the version has no properties).
key_property as (

    select
        versions.test_case_key,
        versions.version_number,
        {{ properties_array('field_map.qtest_label', 'versions.test_case_key', "'text'::text", "'key'::text") }}
            as properties
    from versions
    inner join field_map
        on field_map.zephyr_field = 'key'
    where nullif(field_map.qtest_label, '') is not null
    group by versions.test_case_key, versions.version_number

),

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
        coalesce(key_property.properties, '[]'::jsonb) as properties,
        -- Replayed level by level: every case's first version, then every second one, ...
        versions.version_number::integer as load_order,
        {{ payload_hash([
            "coalesce(nullif(versions.name, ''), versions.test_case_key)",
            "versions.objective",
            "versions.precondition",
            "coalesce(key_property.properties, '[]'::jsonb)",
        ]) }}::varchar as payload_hash,
        versions._loaded_at
    from versions
    inner join test_cases
        on versions.test_case_key = test_cases.key
    left join key_property
        on
            versions.test_case_key = key_property.test_case_key
            and versions.version_number = key_property.version_number

)

select * from final
