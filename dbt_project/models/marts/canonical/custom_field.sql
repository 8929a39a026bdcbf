with

custom_fields as (

    select * from {{ ref('stg_zephyr__custom_fields') }}
    where project_key = '{{ zephyr_project_key() }}'

),

values_read as (

    select
        custom_fields.*,
        jsonb_typeof(field_value_json) as json_type,
        field_value_json #>> '{}' as value_text
    from custom_fields
    -- offset 0: each value is read once, not again in every expression below
    offset 0

),

typed as (

    select
        project_key,
        object_type,
        object_id,
        object_key,
        field_name,
        -- Text as it is; numbers, booleans, arrays and objects as their JSON text.
        {{ custom_field_text('field_value_json', 'json_type', 'value_text') }} as field_value,
        -- Zephyr publishes no field definitions: the type is read off the JSON value.
        {{ custom_field_type('json_type', 'value_text') }} as field_type,
        _loaded_at
    from values_read
    where object_id is not null

),

final as (

    select
        -- Deterministic (the seed's SERIAL is not): a 64-bit hash of object_type/object_id/field_name.
        {{ stable_bigint("object_type || '/' || object_id::text || '/' || field_name") }} as custom_field_id,
        object_type::varchar as object_type,
        object_id,
        field_name::varchar as field_name,
        field_value::text as field_value,
        project_key::varchar as project_key,
        object_key::varchar as object_key,
        field_type::varchar as field_type,
        _loaded_at
    from typed

)

-- In primary-key order: the key's index is then filled page by page, not at random.
select * from final
order by custom_field_id
