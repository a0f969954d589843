// A Vega-Lite spec drawn by vega-embed; the points chosen in its point selections go back to
// the kernel as `selections` ({name: [{field: value, ...}, ...]}). vl-convert bundles this file
// with vega, vega-lite and vega-embed (its javascript_bundle provides `vegaEmbed`): no imports.

function pointSelections(spec, found = []) {
    for (const param of spec.params ?? []) {
        const kind = typeof param.select === "string" ? param.select : param.select?.type;
        if (kind === "point") found.push(param.name);
    }
    for (const key of ["layer", "hconcat", "vconcat", "concat"]) {
        for (const part of spec[key] ?? []) pointSelections(part, found);
    }
    return found;
}

function chosen(view, name) {
    // a point selection's store holds one tuple per point: its fields and their values
    return (view.data(`${name}_store`) ?? []).map((tuple) =>
        Object.fromEntries(tuple.fields.map((f, i) => [f.field, tuple.values[i] ?? null])),
    );
}

async function render({ model, el }) {
    let finalize = null;
    const draw = async () => {
        if (finalize) finalize();
        finalize = null;
        el.replaceChildren();
        const spec = structuredClone(model.get("spec"));
        if (!spec || Object.keys(spec).length === 0) return;
        let result;
        try {
            result = await vegaEmbed(el, spec, structuredClone(model.get("embed_options")));
        } catch (error) {
            const message = document.createElement("p");
            message.className = "crm-chart-error";
            message.textContent = `The chart could not be drawn: ${error.message}`;
            el.replaceChildren(message);
            return;
        }
        finalize = result.finalize;
        for (const name of pointSelections(spec)) {
            result.view.addSignalListener(name, () => {
                model.set("selections", { ...model.get("selections"), [name]: chosen(result.view, name) });
                model.save_changes();
            });
        }
    };
    model.on("change:spec", draw);
    model.on("change:embed_options", draw);
    await draw();
    return () => finalize && finalize();
}

export default { render };
