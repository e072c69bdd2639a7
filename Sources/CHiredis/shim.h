#ifndef ERP_GATEWAY_CHIREDIS_SHIM_H
#define ERP_GATEWAY_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdlib.h>
#include <string.h>

/* hiredis reports reader errors through fields of a struct Swift cannot reach portably;
   these accessors keep that detail in C. */
static inline int erp_redis_reader_has_error(const redisReader *reader) { return reader->err != 0; }
static inline const char *erp_redis_reader_error(const redisReader *reader) { return reader->errstr; }

/* A reply as hiredis parses it, flat: one node per element in the order hiredis creates them
   (an array before its elements), strings' bytes side by side in one buffer. hiredis's own
   reply objects cost a malloc and a free per element (19 per quota script reply, measured with
   the allocation counter); these arrays are kept by the reader and reused for every reply. */
typedef struct erp_reply_node {
    int type;            /* REDIS_REPLY_* */
    int elements;        /* arrays: how many nodes follow as its elements (each with its own) */
    long long integer;   /* integers */
    size_t offset;       /* strings, statuses, errors: where their bytes start in `bytes` */
    size_t length;
} erp_reply_node;

typedef struct erp_reply_builder {
    erp_reply_node *nodes;
    size_t count;
    size_t capacity;
    char *bytes;
    size_t used;
    size_t room;
} erp_reply_builder;

/* Replies larger than this leave their memory to be freed, not kept, once read. */
#define ERP_REPLY_KEPT_NODES 1024
#define ERP_REPLY_KEPT_BYTES 65536

static inline erp_reply_node *erp_reply_add(erp_reply_builder *builder, int type) {
    if (builder->count == builder->capacity) {
        size_t capacity = builder->capacity == 0 ? 32 : builder->capacity * 2;
        erp_reply_node *grown = (erp_reply_node *)realloc(builder->nodes, capacity * sizeof(erp_reply_node));
        if (grown == NULL) return NULL;
        builder->nodes = grown;
        builder->capacity = capacity;
    }
    erp_reply_node *node = &builder->nodes[builder->count++];
    node->type = type;
    node->elements = 0;
    node->integer = 0;
    node->offset = 0;
    node->length = 0;
    return node;
}

/* Every create function answers the builder itself: hiredis needs a non-NULL object (NULL
   means out of memory) and keeps it only to hand back the root, which the reader ignores. */
static inline void *erp_reply_create_string(const redisReadTask *task, char *text, size_t length) {
    erp_reply_builder *builder = (erp_reply_builder *)task->privdata;
    if (builder->used + length > builder->room) {
        size_t room = builder->room == 0 ? 256 : builder->room;
        while (room < builder->used + length) room *= 2;
        char *grown = (char *)realloc(builder->bytes, room);
        if (grown == NULL) return NULL;
        builder->bytes = grown;
        builder->room = room;
    }
    erp_reply_node *node = erp_reply_add(builder, task->type);
    if (node == NULL) return NULL;
    if (length > 0) memcpy(builder->bytes + builder->used, text, length);
    node->offset = builder->used;
    node->length = length;
    builder->used += length;
    return builder;
}

static inline void *erp_reply_create_array(const redisReadTask *task, int elements) {
    erp_reply_builder *builder = (erp_reply_builder *)task->privdata;
    erp_reply_node *node = erp_reply_add(builder, REDIS_REPLY_ARRAY);
    if (node == NULL) return NULL;
    node->elements = elements;
    return builder;
}

static inline void *erp_reply_create_integer(const redisReadTask *task, long long value) {
    erp_reply_builder *builder = (erp_reply_builder *)task->privdata;
    erp_reply_node *node = erp_reply_add(builder, REDIS_REPLY_INTEGER);
    if (node == NULL) return NULL;
    node->integer = value;
    return builder;
}

static inline void *erp_reply_create_nil(const redisReadTask *task) {
    erp_reply_builder *builder = (erp_reply_builder *)task->privdata;
    return erp_reply_add(builder, REDIS_REPLY_NIL) == NULL ? NULL : builder;
}

/* The nodes belong to the builder, which its reader's owner frees. */
static inline void erp_reply_free_object(void *object) { (void)object; }

/* Forgets the reply read (or half read); keeps the memory of an ordinary one. */
static inline void erp_reply_builder_reset(erp_reply_builder *builder) {
    if (builder->capacity > ERP_REPLY_KEPT_NODES) {
        free(builder->nodes);
        builder->nodes = NULL;
        builder->capacity = 0;
    }
    if (builder->room > ERP_REPLY_KEPT_BYTES) {
        free(builder->bytes);
        builder->bytes = NULL;
        builder->room = 0;
    }
    builder->count = 0;
    builder->used = 0;
}

static inline void erp_reply_builder_free(erp_reply_builder *builder) {
    free(builder->nodes);
    free(builder->bytes);
    free(builder);
}

/* A reader whose replies are built into `*builder` (allocated here; NULL when out of memory). */
static inline redisReader *erp_reply_reader_create(erp_reply_builder **builder) {
    static redisReplyObjectFunctions functions = {
        erp_reply_create_string, erp_reply_create_array, erp_reply_create_integer, erp_reply_create_nil, erp_reply_free_object
    };
    erp_reply_builder *made = (erp_reply_builder *)calloc(1, sizeof(erp_reply_builder));
    if (made == NULL) return NULL;
    redisReader *reader = redisReaderCreateWithFunctions(&functions);
    if (reader == NULL) {
        free(made);
        return NULL;
    }
    reader->privdata = made;
    *builder = made;
    return reader;
}
#endif
