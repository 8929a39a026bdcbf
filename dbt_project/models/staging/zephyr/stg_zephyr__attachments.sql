with

source as (

    select * from {{ source('zephyr', 'attachments') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as attachment_id,
        source.key as attachment_key,
        source.parent_key as owner_path,
        -- The owner path is one of testcases/<KEY>, testcases/<KEY>/teststeps/<step id>,
        -- testcycles/<KEY>, testplans/<KEY>, testexecutions/<id>, testexecutions/<id>/teststeps/<step id>.
        case
            when source.parent_key ~ '^testcases/[^/]+$' then 'TestCase'
            when source.parent_key ~ '^testcases/[^/]+/teststeps/[0-9]+$' then 'TestStep'
            when source.parent_key ~ '^testcycles/[^/]+$' then 'TestCycle'
            when source.parent_key ~ '^testplans/[^/]+$' then 'TestPlan'
            when source.parent_key ~ '^testexecutions/[^/]+$' then 'TestExecution'
            when source.parent_key ~ '^testexecutions/[^/]+/teststeps/[0-9]+$' then 'TestExecutionStep'
        end as related_type,
        split_part(source.parent_key, '/', 2) as owner_ref,
        case
            when split_part(source.parent_key, '/', 4) ~ '^[0-9]{1,18}$'
                then split_part(source.parent_key, '/', 4)::bigint
        end as owner_step_id,

        ----------  text
        payload.name as attachment_name,
        source.content_type,

        ----------  numbers
        source.size_bytes,

        ----------  binary
        source.sha256,
        source.content,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        name text
    )

)

select * from renamed
