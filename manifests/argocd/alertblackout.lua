-- Generated from health.lua.template by `make argocd`: edit the template, not this file.
-- Argo CD health of an alerting.armor.dev/AlertBlackout, read from the conditions the operator writes.
-- Argo CD runs this with the live object as the global `obj` and shows the returned status and message.
local hs = {}

-- Whether the kind has spec.suspend; the generator reads it from the kind's CRD.
local suspendable = false

local function condition(conditions, type)
  for _, c in ipairs(conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- A suspended object is Ready=False on purpose (it sends nothing); that is a choice, not a failure.
if suspendable and obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

-- Conditions describe the generation the operator last saw; until it catches up they say nothing about this one.
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(obj.status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

hs.message = ready.message or ready.reason or ""
if ready.status == "True" then
  hs.status = "Healthy"
elseif is_true(condition(obj.status.conditions, "Stalled")) then
  hs.status = "Degraded"
elseif is_true(condition(obj.status.conditions, "Reconciling")) or ready.status ~= "False" then
  -- Reconciling=True: the operator is still working (retrying, waiting for a destination); Unknown: not decided yet.
  hs.status = "Progressing"
else
  -- Ready=False that the operator marks neither as in progress nor as stalled: nothing will fix it by waiting.
  hs.status = "Degraded"
end
return hs
