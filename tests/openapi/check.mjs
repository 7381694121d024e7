// check.mjs -- checks docs/openapi.yaml against a running stockd
// (tests/suites/43-openapi.sh): the file with a real OpenAPI validator
// (@apidevtools/swagger-parser), then every operation's examples run in the
// order the file lists them (an operation with named examples runs each, in
// order, against the response example of the same name), then a few error
// answers against the problem schema. Usage: node check.mjs OPENAPI_FILE BASE_URL
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv2020 from "ajv/dist/2020.js";

const METHODS = ["get", "put", "post", "delete", "patch"];
const [file, base] = process.argv.slice(2);
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
let failures = 0;

function fail(what, detail) {
    console.log(`FAIL ${what}: ${detail}`);
    failures++;
}

// Example and answer are equal, except time_us and deadline_us (the
// clock's, any integer) and disk_free_bytes (the file system's).
function same(example, actual) {
    if (Array.isArray(example))
        return Array.isArray(actual) && example.length === actual.length &&
            example.every((item, i) => same(item, actual[i]));
    if (example !== null && typeof example === "object")
        return actual !== null && typeof actual === "object" &&
            Object.keys(example).length === Object.keys(actual).length &&
            Object.keys(example).every((key) => ["time_us", "deadline_us", "disk_free_bytes"].includes(key) ||
                                            same(example[key], actual[key]));
    return example === actual;
}

function checkSchema(what, schema, body) {
    const validate = ajv.compile(schema);
    if (!validate(body))
        fail(what, `the answer breaks the schema: ${ajv.errorsText(validate.errors)}: ${JSON.stringify(body)}`);
}

// The URL of an operation from its path and query parameters' examples.
function exampleUrl(path, parameters) {
    let url = path;
    const query = [];
    for (const parameter of parameters) {
        if (parameter.in === "path")
            url = url.replace(`{${parameter.name}}`, encodeURIComponent(parameter.example));
        else if (parameter.in === "query" && parameter.example !== undefined)
            query.push(`${parameter.name}=${encodeURIComponent(parameter.example)}`);
    }
    return base + url + (query.length > 0 ? "?" + query.join("&") : "");
}

async function runExample(path, method, operation, pathParameters) {
    const request = operation.requestBody?.content?.["application/json"];
    const names = Object.keys(request?.examples ?? {});
    if (names.length === 0)
        return runOne(`${method.toUpperCase()} ${path}`, path, method, operation, pathParameters,
                      request?.example, (media) => media.example);
    for (const name of names)
        await runOne(`${method.toUpperCase()} ${path} (${name})`, path, method, operation, pathParameters,
                     request.examples[name].value, (media) => media.examples?.[name]?.value);
}

// Sends one example request and compares the answer with the documented
// response that expected picks from the 200's media type.
async function runOne(what, path, method, operation, pathParameters, body, expected) {
    const parameters = [...pathParameters, ...(operation.parameters ?? [])];
    const answer = await fetch(exampleUrl(path, parameters), {
        method: method.toUpperCase(),
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const documented = operation.responses["200"];
    const [type, media] = Object.entries(documented.content)[0];
    if (type === "text/event-stream") {
        // A stream has no end to read to: its status and type are the check.
        await answer.body?.cancel();
        if (answer.status !== 200 || !answer.headers.get("content-type").startsWith(type))
            return fail(what, `status ${answer.status}, content type ${answer.headers.get("content-type")}`);
        return console.log(`ok   ${what} (${type})`);
    }
    const text = await answer.text();
    if (answer.status !== 200)
        return fail(what, `status ${answer.status}: ${text}`);
    if (!answer.headers.get("content-type").startsWith(type))
        return fail(what, `content type ${answer.headers.get("content-type")}, documented ${type}`);
    if (type !== "application/json")
        return console.log(`ok   ${what} (${type})`);
    const actual = JSON.parse(text);
    checkSchema(what, media.schema, actual);
    if (!same(expected(media), actual))
        return fail(what, `answered ${text}, the example says ${JSON.stringify(expected(media))}`);
    console.log(`ok   ${what}: the example`);
}

// Errors: each answer must be a problem object of its status.
const errors = [
    ["GET", "/v1/skus/nope", undefined, {}, 404],
    ["POST", "/v1/deductions", { line_id: "E1", sku: "A12", qty: 1000 }, {}, 409],
    ["PUT", "/v1/skus/A12", { available: 1 }, { "If-Match": '"0.0.0.0"' }, 412],
    ["POST", "/v1/deductions", { sku: "A12", qty: 2 }, { "Idempotency-Key": '"L1"' }, 422],
    ["GET", "/v1/skus?limit=0", undefined, {}, 400],
    ["GET", "/v1/orders/nope/lines", undefined, {}, 404],
    ["POST", "/v1/holds/H1/release", undefined, {}, 409],
    ["POST", "/v1/holds/nope/confirm", undefined, {}, 404],
];

async function runError(api, [method, path, body, headers, status]) {
    const what = `${method} ${path} (${status})`;
    const answer = await fetch(base + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const actual = await answer.json();
    if (answer.status !== status || actual.status !== status)
        return fail(what, `status ${answer.status}: ${JSON.stringify(actual)}`);
    if (answer.headers.get("content-type") !== "application/problem+json")
        return fail(what, `content type ${answer.headers.get("content-type")}`);
    checkSchema(what, api.components.schemas.Problem, actual);
    console.log(`ok   ${what}: a problem (${actual.code})`);
}

await SwaggerParser.validate(file);   // throws, naming what is wrong
console.log(`ok   ${file} is a valid OpenAPI ${(await SwaggerParser.parse(file)).openapi} document`);
const api = await SwaggerParser.dereference(file);
// OpenAPI 3.1's meta-schema leaves schemas to JSON Schema: compiling each
// checks it against the 2020-12 meta-schema (a misspelt type fails here).
for (const [name, schema] of Object.entries(api.components.schemas)) {
    try {
        ajv.compile(schema);
    } catch (error) {
        fail(`components/schemas/${name}`, error.message);
    }
}
let operations = 0;
for (const [path, item] of Object.entries(api.paths)) {
    for (const method of Object.keys(item).filter((key) => METHODS.includes(key))) {
        await runExample(path, method, item[method], item.parameters ?? []);
        operations++;
    }
}
for (const error of errors)
    await runError(api, error);
const answer = await fetch(base + "/v1/deductions", { method: "DELETE" });
checkSchema("DELETE /v1/deductions (405)",
    api.components.responses.MethodNotAllowed.content["application/problem+json"].schema, await answer.json());
if (answer.status !== 405 || !answer.headers.get("allow"))
    fail("DELETE /v1/deductions", `status ${answer.status}, Allow ${answer.headers.get("allow")}`);
console.log(`${operations} operations, ${errors.length + 1} errors; ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
